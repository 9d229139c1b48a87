#!/usr/bin/env bash
# The commands behind docs/benchmarks.md (one seed each, time-limited: 2-core CPU budget).
# Each group writes bench-out/<group>/{runs/,tables.md,results.csv,fig_*.png}; re-running resumes.
set -euo pipefail
cd "$(dirname "$0")/.."
PY=.venv/bin/python
group=${1:-all}
run() { echo "== $*"; $PY -m pinntao.bench "$@"; }

if [[ $group == all || $group == poisson2d ]]; then
  run --problems poisson2d --methods sngd,sngd_damped,sngd1,engd,gn,gn_nystrom,lbfgs,adam,torch_lbfgs,torch_adam \
      --max-it 2000 --max-it-first-order 100000 --time-limit 120 --out bench-out/poisson2d --overhead
fi
if [[ $group == all || $group == heat1d ]]; then
  run --problems heat1d --methods sngd,sngd_damped,sngd1,engd,lbfgs,adam,torch_lbfgs,torch_adam \
      --max-it 2000 --max-it-first-order 100000 --time-limit 90 --out bench-out/heat1d
fi
if [[ $group == all || $group == heat1d_a2 ]]; then
  run --problems heat1d --layers 50,50,50 --methods sngd_damped,engd,lbfgs --max-it 2000 --max-it-first-order 100000 \
      --time-limit 120 --out bench-out/heat1d_a2
fi
if [[ $group == all || $group == scaling ]]; then
  echo "== scaling"; $PY -m pinntao.bench.scaling --out bench-out/scaling --max-p 20000
fi
