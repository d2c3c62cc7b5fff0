# How jobs are launched, with Kaldi's interface: $cmd [options] [JOB=1:N] LOG COMMAND...
#
# Local machine (default): tools/run_local.sh, like Kaldi's run.pl.
# Slurm cluster: ASR_LAUNCHER=slurm ./run.sh ...: tools/run_slurm.sh, like Kaldi's slurm.pl;
# partitions, GPUs and memory come from conf/slurm.conf here, else the toolkit's
# conf/slurm.conf. Training asks for one GPU (per-utterance SGD does not scale across GPUs).
case "${ASR_LAUNCHER:-local}" in
  local)
    export train_cmd="run_local.sh"
    export decode_cmd="run_local.sh"
    ;;
  slurm)
    export train_cmd="run_slurm.sh --gpu 1 --mem 16G --time 48:00:00"
    export decode_cmd="run_slurm.sh --mem 4G --time 2:00:00"
    ;;
  *)
    echo "cmd.sh: ASR_LAUNCHER must be 'local' or 'slurm', not '$ASR_LAUNCHER'" >&2
    return 1
    ;;
esac
