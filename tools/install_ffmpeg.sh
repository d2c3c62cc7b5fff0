#!/usr/bin/env bash
# Install ffmpeg (Debian package `ffmpeg`), which asr.audio uses to decode containers that
# libsndfile does not read: m4a/mp4 (AAC), webm/mkv, and others.
#
#   tools/install_ffmpeg.sh
#
# Idempotent: does nothing when `ffmpeg` is already on PATH. Needs root (or sudo) and apt-get;
# without them it says what to run and exits with status 1.
set -euo pipefail
. "$(dirname "$0")/apt_lib.sh"

if command -v ffmpeg >/dev/null 2>&1; then
  echo "install_ffmpeg.sh: ffmpeg already installed ($(command -v ffmpeg))"
  exit 0
fi
apt_install install_ffmpeg.sh ffmpeg
echo "install_ffmpeg.sh: installed $(command -v ffmpeg)"
