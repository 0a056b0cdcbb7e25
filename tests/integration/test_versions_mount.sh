#!/usr/bin/env bash
# Versions, not clocks, with changes made through makuofs mounts: see versions_cases.sh.
MODE=mount
. "$(dirname "$0")/versions_cases.sh"
