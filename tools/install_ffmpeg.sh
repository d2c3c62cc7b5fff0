#!/usr/bin/env bash
# Install ffmpeg (Debian package `ffmpeg`), which asr.audio uses to decode containers that
# libsndfile does not read: m4a/mp4 (AAC), webm/mkv, and others.
#
#   tools/install_ffmpeg.sh
#
# Idempotent: does nothing when `ffmpeg` is already on PATH. Needs root (or sudo) and apt-get;
# without them it says what to run and exits with status 1.
set -euo pipefail

if command -v ffmpeg >/dev/null 2>&1; then
  echo "install_ffmpeg.sh: ffmpeg already installed ($(command -v ffmpeg))"
  exit 0
fi
if ! command -v apt-get >/dev/null 2>&1; then
  echo "install_ffmpeg.sh: apt-get not found; install ffmpeg (https://ffmpeg.org) so that 'ffmpeg' is on PATH" >&2
  exit 1
fi

if [ "$(id -u)" -eq 0 ]; then
  sudo=()
elif command -v sudo >/dev/null 2>&1 && sudo -n true 2>/dev/null; then
  sudo=(sudo -n)
else
  echo "install_ffmpeg.sh: installing packages needs root; run 'sudo apt-get install -y ffmpeg' (or this script as root)" >&2
  exit 1
fi

export DEBIAN_FRONTEND=noninteractive
if ! apt-cache show ffmpeg >/dev/null 2>&1; then
  "${sudo[@]}" apt-get update
fi
"${sudo[@]}" apt-get install -y --no-install-recommends ffmpeg
echo "install_ffmpeg.sh: installed $(command -v ffmpeg)"
