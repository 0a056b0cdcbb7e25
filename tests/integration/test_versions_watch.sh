#!/usr/bin/env bash
# Versions, not clocks, with changes made in the base directories (makuosan --watch): see versions_cases.sh.
MODE=watch
. "$(dirname "$0")/versions_cases.sh"
