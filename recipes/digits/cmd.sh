# How jobs are launched (Kaldi's interface: $cmd [opts] [JOB=1:N] LOG COMMAND...).
# Local machine (default):
export train_cmd="run_local.sh"
export decode_cmd="run_local.sh"
# On a Slurm cluster, point these at a Slurm launcher with the same interface.
