# How jobs are launched, with Kaldi's interface: $cmd [options] [JOB=1:N] LOG COMMAND...
#
# Local machine (default): tools/run_local.sh, like Kaldi's run.pl.
# Slurm cluster: ASR_LAUNCHER=slurm ./run.sh ...: tools/run_slurm.sh, like Kaldi's slurm.pl;
# partitions, GPUs and memory come from conf/slurm.conf here, else the toolkit's
# conf/slurm.conf. run.sh adds --gpu N to $train_cmd for a torchrun job on N GPUs, and
# --nodes M (run.sh --nodes M) for one torchrun per node on M nodes.
# Training memory is per node. The training audio is read per batch by DataLoader workers
# (train.preload: false, the default), not held in RAM (23-221 GB per process for 100-960 h
# when preloaded), so a node needs its ranks (CUDA context, model, optimizer state and
# checkpoint copies: a few GB each), their workers and pinned batches: about 64 GB for 8 ranks
# (an estimate, not measured). With train.preload: true ask for the corpus's size per rank.
case "${ASR_LAUNCHER:-local}" in
  local)
    export prep_cmd="run_local.sh"
    export train_cmd="run_local.sh"
    export decode_cmd="run_local.sh"
    ;;
  slurm)
    export prep_cmd="run_slurm.sh --mem 4G --time 2:00:00"
    export train_cmd="run_slurm.sh --mem 64G --time 96:00:00"
    export decode_cmd="run_slurm.sh --mem 16G --time 8:00:00"
    ;;
  *)
    echo "cmd.sh: ASR_LAUNCHER must be 'local' or 'slurm', not '$ASR_LAUNCHER'" >&2
    return 1
    ;;
esac
