# How jobs are launched, with Kaldi's interface: $cmd [options] [JOB=1:N] LOG COMMAND...
#
# Local machine (default): tools/run_local.sh, like Kaldi's run.pl.
# Slurm cluster: ASR_LAUNCHER=slurm ./run.sh ...: tools/run_slurm.sh, like Kaldi's slurm.pl;
# partitions, GPUs and memory come from conf/slurm.conf here, else the toolkit's
# conf/slurm.conf.
case "${ASR_LAUNCHER:-local}" in
  local)
    export train_cmd="run_local.sh"
    export decode_cmd="run_local.sh"
    ;;
  slurm)
    export train_cmd="run_slurm.sh --mem 8G --time 4:00:00 --gpu 1"
    export decode_cmd="run_slurm.sh --mem 4G --time 1:00:00"
    ;;
  *)
    echo "cmd.sh: ASR_LAUNCHER must be 'local' or 'slurm', not '$ASR_LAUNCHER'" >&2
    return 1
    ;;
esac
