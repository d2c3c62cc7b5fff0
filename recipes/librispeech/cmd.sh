# How jobs are launched, with Kaldi's interface: $cmd [options] [JOB=1:N] LOG COMMAND...
#
# Local machine (default): tools/run_local.sh, like Kaldi's run.pl.
# Slurm cluster: ASR_LAUNCHER=slurm ./run.sh ...: tools/run_slurm.sh, like Kaldi's slurm.pl;
# partitions, GPUs and memory come from conf/slurm.conf here, else the toolkit's
# conf/slurm.conf. run.sh adds --gpu N to $train_cmd for a torchrun job on N GPUs.
case "${ASR_LAUNCHER:-local}" in
  local)
    export prep_cmd="run_local.sh"
    export train_cmd="run_local.sh"
    export decode_cmd="run_local.sh"
    ;;
  slurm)
    export prep_cmd="run_slurm.sh --mem 4G --time 2:00:00"
    export train_cmd="run_slurm.sh --mem 200G --time 96:00:00"
    export decode_cmd="run_slurm.sh --mem 16G --time 8:00:00"
    ;;
  *)
    echo "cmd.sh: ASR_LAUNCHER must be 'local' or 'slurm', not '$ASR_LAUNCHER'" >&2
    return 1
    ;;
esac
