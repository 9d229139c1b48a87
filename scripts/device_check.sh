#!/usr/bin/env bash
# The GPU check, one script under 5 minutes: the CUDA-marked tests, then a timing table of
# poisson2d at P = 1,341 (4×20) and 5,425 (64-48-32-16), sngd and engd_kernel, 200 iterations
# (each run capped at CAP s, default 15), -pinn_device cuda against cpu. Results go to $OUT (the device
# tool's folder) or bench-out/device: pytest.log, runs/*.json and device_check.md.
#   bash scripts/device_check.sh
set -uo pipefail
cd "$(dirname "$0")/.."
out=${OUT:-bench-out/device}
mkdir -p "$out/runs"
PY=${PY:-.venv/bin/python}
[ -x "$PY" ] || PY=python3

"$PY" -c "import torch; print('torch', torch.__version__, 'cuda', torch.cuda.is_available(),
      torch.cuda.get_device_name(0) if torch.cuda.is_available() else '-')" | tee "$out/device.txt"
OMP_NUM_THREADS=1 timeout 150 "$PY" -m pytest -q -m cuda tests/test_cuda.py 2>&1 | tail -20 > "$out/pytest.log"
tests_rc=${PIPESTATUS[0]}
cat "$out/pytest.log"

for layers in 20,20,20,20 64,48,32,16; do
  for method in sngd engd_kernel; do
    for dev in cuda cpu; do
      tag="${layers//,/x}_${method}_${dev}"
      timeout 60 "$PY" -m pinntao -pinn_problem poisson2d -pinn_layers "$layers" -pinn_optimizer "$method" \
        -pinn_device "$dev" -tao_max_it 200 -pinn_time_limit "${CAP:-15}" -pinn_report "$out/runs/$tag.json" \
        > "$out/runs/$tag.log" 2>&1 || echo "run $tag failed (exit $?)" | tee -a "$out/runs/failed.txt"
    done
  done
done

"$PY" - "$out" <<'EOF'
import json, pathlib, sys
out = pathlib.Path(sys.argv[1])
rows = ["| network | P | method | device | iterations | ms per iteration (the solve's wall time / iterations) | rel. L² |", "|---|---|---|---|---|---|---|"]
for f in sorted((out / "runs").glob("*.json")):
    d = json.loads(f.read_text())
    its = max(int(d["iterations"]), 1)
    rows.append(f"| {f.stem.split('_')[0]} | {d['n_params']} | {d['method']} | {d['device']} | {d['iterations']} "
                f"| {1e3 * float(d['wall_s']) / its:.1f} | {float(d['rel_l2']):.2e} |")
(out / "device_check.md").write_text("\n".join(rows) + "\n")
print("\n".join(rows))
EOF
exit "$tests_rc"
