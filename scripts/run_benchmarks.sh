#!/usr/bin/env bash
# The commands behind docs/benchmarks.md (one seed each, time-limited: 2-core CPU budget).
# Each group writes bench-out/<group>/{runs/,tables.md,results.csv,fig_*.png}; re-running resumes.
set -euo pipefail
cd "$(dirname "$0")/.."
PY=.venv/bin/python
group=${1:-all}
run() { echo "== $*"; $PY -m pinntao.bench "$@"; }

if [[ $group == all || $group == poisson2d ]]; then
  run --problems poisson2d --methods sngd,sngd_damped,sngd1,engd,gn,ngcg,lbfgs,adam,torch_lbfgs,torch_adam \
      --max-it 2000 --max-it-first-order 100000 --time-limit 120 --out bench-out/poisson2d --overhead
fi
if [[ $group == all || $group == heat1d ]]; then
  run --problems heat1d --methods sngd,sngd_damped,sngd1,engd,gn,lbfgs,adam,torch_lbfgs,torch_adam \
      --max-it 2000 --max-it-first-order 100000 --time-limit 90 --out bench-out/heat1d
fi
if [[ $group == all || $group == heat1d_a2 ]]; then
  run --problems heat1d --layers 50,50,50 --methods sngd_damped,engd,lbfgs --max-it 2000 --max-it-first-order 100000 \
      --time-limit 120 --out bench-out/heat1d_a2
fi
if [[ $group == all || $group == targets ]]; then
  run --problems nonlinear1d_neumann,transport1d --methods sngd_damped,engd,lbfgs \
      --max-it 3000 --max-it-first-order 100000 --time-limit 90 --out bench-out/targets
fi
if [[ $group == all || $group == zoo ]]; then
  run --problems poisson1d,poisson1d_multiscale,poisson2d_multiscale,helmholtz2d,singular_perturbation,burgers1d,nonlinear1d_neumann,transport1d \
      --methods adam,lbfgs,gn --max-it 3000 --max-it-first-order 100000 --time-limit 20 --out bench-out/zoo
fi
# implicit steps (the ISGD paper's problems; 1 torch thread per run)
ISGD_METHODS=adam,lbfgs,isgd,isgd_linearized,isgd_adam,isgd_lbfgs,adam_lbfgs,sngd_damped
if [[ $group == all || $group == isgd_sp ]]; then
  for eps in 2 0.01; do
    run --problems singular_perturbation --layers 50,50,50,50 --methods $ISGD_METHODS --max-it 100000 \
        --max-it-first-order 1000000 --time-limit 60 --extra "-pinn_param_eps $eps -pinn_n_interior 400 -pinn_threads 1" \
        --out bench-out/isgd_sp_eps$eps
  done
fi
if [[ $group == all || $group == isgd_2d ]]; then
  run --problems poisson2d_multiscale --methods $ISGD_METHODS --max-it 100000 --max-it-first-order 1000000 \
      --time-limit 120 --extra "-pinn_threads 1" --out bench-out/isgd_poisson2d
  run --problems helmholtz2d --methods $ISGD_METHODS --max-it 100000 --max-it-first-order 1000000 \
      --time-limit 120 --extra "-pinn_param_k 4 -pinn_threads 1" --out bench-out/isgd_helmholtz
fi
if [[ $group == all || $group == isgd_long ]]; then  # the best schedule with 5× the budget
  run --problems helmholtz2d --methods isgd_lbfgs --max-it 1000000 --max-it-first-order 1000000 --time-limit 600 \
      --extra "-pinn_param_k 4 -pinn_threads 1" --out bench-out/isgd_long_helmholtz
  run --problems poisson2d_multiscale --methods isgd_lbfgs --max-it 1000000 --max-it-first-order 1000000 \
      --time-limit 600 --extra "-pinn_threads 1" --out bench-out/isgd_long_poisson2d
fi
if [[ $group == all || $group == isgd_1d_small ]]; then  # the zoo's default 3 × 50 network (P = 5,251)
  run --problems poisson1d_multiscale --methods adam,lbfgs,isgd,isgd_linearized,isgd_lbfgs,sngd_damped \
      --max-it 100000 --max-it-first-order 1000000 --time-limit 120 --extra "-pinn_threads 1" \
      --out bench-out/isgd_1d_small
fi
if [[ $group == all || $group == isgd_1d ]]; then  # the paper's 5 × 200 network (P = 161,401), 1000 points
  run --problems poisson1d_multiscale --layers 200,200,200,200,200 --methods adam,lbfgs,isgd,isgd_lbfgs \
      --method "isgd_paper=-pinn_optimizer isgd -tao_isgd_alpha_growth 1" --max-it 100000 \
      --max-it-first-order 1000000 --time-limit 600 --extra "-pinn_threads 1" --out bench-out/isgd_1d
fi
# issue 10: loss-weight annealing + modified MLP (Adam, mini-batches of 256), SAV family on Burgers, RAD
I10_ANNEAL=(--methods adam --method "anneal=-pinn_optimizer adam -pinn_weights annealing"
  --method "anneal_w=-pinn_optimizer adam -pinn_weights annealing -pinn_weights_mean weighted"
  --method "anneal_mmlp=-pinn_optimizer adam -pinn_weights annealing -pinn_arch modified_mlp"
  --method "anneal_w_mmlp=-pinn_optimizer adam -pinn_weights annealing -pinn_weights_mean weighted -pinn_arch modified_mlp")
if [[ $group == all || $group == i10_helmholtz ]]; then
  run --problems helmholtz2d "${I10_ANNEAL[@]}" --max-it 3000 --max-it-first-order 3000 --time-limit 600 \
      --extra "-pinn_batch_size 256 -pinn_threads 1" --out bench-out/i10_helmholtz
fi
if [[ $group == all || $group == i10_helmholtz_long ]]; then  # the same, 10,000 iterations (paper: 40,000)
  run --problems helmholtz2d --methods adam \
      --method "anneal_w=-pinn_optimizer adam -pinn_weights annealing -pinn_weights_mean weighted" \
      --method "anneal_w_mmlp=-pinn_optimizer adam -pinn_weights annealing -pinn_weights_mean weighted -pinn_arch modified_mlp" \
      --max-it 10000 --max-it-first-order 10000 --time-limit 900 --extra "-pinn_batch_size 256 -pinn_threads 1" \
      --out bench-out/i10_helmholtz_long
fi
if [[ $group == all || $group == i10_kg ]]; then
  run --problems klein_gordon1d "${I10_ANNEAL[@]}" --max-it 3000 --max-it-first-order 3000 --time-limit 600 \
      --extra "-pinn_batch_size 256 -pinn_threads 1" --out bench-out/i10_kg
fi
if [[ $group == all || $group == i10_kg_long ]]; then  # the same, 10,000 iterations
  run --problems klein_gordon1d --methods adam \
      --method "anneal_w=-pinn_optimizer adam -pinn_weights annealing -pinn_weights_mean weighted" \
      --method "anneal_w_mmlp=-pinn_optimizer adam -pinn_weights annealing -pinn_weights_mean weighted -pinn_arch modified_mlp" \
      --max-it 10000 --max-it-first-order 10000 --time-limit 900 --extra "-pinn_batch_size 256 -pinn_threads 1" \
      --out bench-out/i10_kg_long
fi
if [[ $group == all || $group == kg_code ]]; then  # the authors' code's annealing + input map (KG's recommended set-up)
  CODE="-pinn_optimizer adam -pinn_arch modified_mlp -pinn_input_scale box -pinn_weights annealing -pinn_weights_mean weighted"
  CODE+=" -pinn_weights_alpha 0.1 -pinn_weights_share kind"
  run --problems klein_gordon1d --methods adam --method "code=$CODE" \
      --method "code_points=$CODE -pinn_n_boundary 2000 -pinn_n_initial 1000" --seeds 0,1 \
      --max-it 10000 --max-it-first-order 10000 --time-limit 900 --extra "-pinn_batch_size 256 -pinn_threads 1" \
      --out bench-out/kg_code
fi
if [[ $group == all || $group == i10_burgers ]]; then  # the SAV paper's Burgers: 5×32 tanh, C = 1e4, λ = 4
  SAV="-tao_sav_C 1e4 -tao_sav_lambda 4"
  M=(--methods adam --method "adam_lr1e-2=-pinn_optimizer adam -tao_adam_lr 1e-2"
     --method "adam_lr1e-1=-pinn_optimizer adam -tao_adam_lr 1e-1")
  for m in sav relsav asav; do
    for dt in 1e-2 1e-1; do M+=(--method "${m}_dt$dt=-pinn_optimizer $m -tao_sav_dt $dt $SAV"); done
  done
  run --problems burgers1d "${M[@]}" --max-it 1000 --max-it-first-order 1000 --time-limit 600 \
      --extra "-pinn_threads 1" --out bench-out/i10_burgers
  $PY scripts/sav_figures.py bench-out/i10_burgers
fi
if [[ $group == all || $group == i10_rad ]]; then  # equal point counts: fixed uniform points vs RAD (β = 1, c = 1)
  M=(--methods lbfgs,adam --method "rad_lbfgs=-tao_type lmvm -pinn_resample rad -pinn_resample_every 500"
     --method "rad_adam=-pinn_optimizer adam -pinn_resample rad -pinn_resample_every 500")
  run --problems singular_perturbation "${M[@]}" --max-it 3000 --max-it-first-order 3000 --time-limit 600 \
      --extra "-pinn_param_eps 0.01 -pinn_n_interior 100 -pinn_threads 1" --out bench-out/i10_rad_sp
  run --problems burgers1d "${M[@]}" --max-it 2000 --max-it-first-order 2000 --time-limit 600 \
      --extra "-pinn_n_interior 500 -pinn_threads 1" --out bench-out/i10_rad_burgers
fi
if [[ $group == all || $group == ranks ]]; then
  for np in 1 2; do
    run --problems poisson2d --methods sngd --np $np --max-it 100 --time-limit 0 --no-figures --out bench-out/ranks_np$np
  done
fi
# natural gradient (issue 13): default sngd (relative cut + LM damping) vs the paper's variant, ENGD, kernel ENGD, SPRING
NG="-pinn_threads 1"
if [[ $group == all || $group == ng || $group == ng_poisson2d ]]; then
  run --problems poisson2d --methods sngd,sngd_paper,engd,engd_kernel,spring --max-it 100000 --time-limit 90 \
      --extra "$NG" --out bench-out/ng_poisson2d
fi
if [[ $group == all || $group == ng || $group == ng_heat1d ]]; then
  run --problems heat1d --methods sngd,sngd_paper,engd,engd_kernel,spring --max-it 100000 --time-limit 120 \
      --extra "$NG" --out bench-out/ng_heat1d
  run --problems heat1d --layers 50,50,50 --methods sngd,sngd_paper,engd_kernel,spring_nystrom --max-it 100000 \
      --time-limit 120 --extra "$NG" --out bench-out/ng_heat1d_a2
fi
if [[ $group == all || $group == ng || $group == ng_targets ]]; then
  run --problems nonlinear1d_neumann,transport1d,poisson1d_multiscale --methods sngd,sngd_paper,engd_kernel,spring \
      --max-it 100000 --time-limit 90 --extra "$NG" --out bench-out/ng_targets
fi
if [[ $group == all || $group == ng || $group == ng_zoo ]]; then  # sngd vs engd at equal wall time
  run --problems poisson1d,poisson1d_multiscale,poisson2d_multiscale,helmholtz2d,singular_perturbation,burgers1d,nonlinear1d_neumann,transport1d \
      --methods sngd,engd --max-it 100000 --time-limit 30 --extra "$NG" --no-figures --out bench-out/ng_zoo
fi
if [[ $group == all || $group == ng || $group == ng_ranks ]]; then  # same points, 40 iterations, ranks × threads
  for cfg in "1 1" "2 1" "1 2"; do
    set -- $cfg
    run --problems poisson2d --methods sngd --np $1 --max-it 40 --time-limit 0 --no-figures \
        --extra "-pinn_threads $2 -pinn_n_interior 8000 -pinn_n_boundary 800" --out bench-out/ng_ranks_np$1_t$2
  done
fi
# issue 19: which damping rule for the default, on a quiet machine (same points, seed 0, one torch thread per rank):
# sngd_paper (no damping), sngd (LM μ = c·L), the safeguard rule (undamped, LM only after a rejection) with the
# paper's absolute cut and with the relative cut, engd_kernel (Woodbury ENGD, μ = 1e-10) and its LM variant;
# P = 257 (2-64-1), 1,341 (4×20), 5,425 (64-48-32-16), 90 s each, 1 rank and 2 ranks; robustness on transport
# and multiscale Poisson (no line-search stop)
NG_SG="sngd_sg=-pinn_optimizer sngd_paper -tao_ng_damping safeguard"
NG_SGR="sngd_sg_rel=-pinn_optimizer sngd_paper -tao_ng_damping safeguard -tao_ng_pc_sketch_rtol 1e-15 -tao_ng_pc_sketch_tol 1e-300"
if [[ $group == ng_damping ]]; then  # about 70 minutes; not part of "all"
  for np in 1 2; do
    for layers in 64 20,20,20,20 64,48,32,16; do
      run --problems poisson2d --layers $layers --np $np --methods sngd_paper,sngd,engd_kernel,engd_kernel_lm \
          --method "$NG_SG" --method "$NG_SGR" --max-it 100000 --time-limit 90 --extra "$NG" \
          --out bench-out/ng_damping_np${np}_${layers//,/x}
    done
  done
  run --problems transport1d,poisson1d_multiscale --methods sngd,sngd_paper,engd_kernel --method "$NG_SG" \
      --method "$NG_SGR" --max-it 100000 --time-limit 90 --extra "$NG" --out bench-out/ng_damping_robust
fi
# issue 19, the default rule on a quiet machine: the default sngd (LM μ = c·L, backtrack) against the paper's
# variant, the safeguard rule (undamped until a rejection, relative cut) with the grid (sngd_sg_rel) or the
# accept-first line search (sngd_sg_bt), and Woodbury ENGD; 90 s each, 1 rank, then P = 1,341 on 2 ranks
# (about 35 minutes)
NG_SGB="sngd_sg_bt=-pinn_optimizer sngd -tao_ng_damping safeguard"
if [[ $group == ng_default ]]; then
  for layers in 20,20,20,20 64 64,48,32,16; do
    run --problems poisson2d --layers $layers --methods sngd,sngd_paper,engd_kernel --method "$NG_SGR" \
        --method "$NG_SGB" --max-it 100000 --time-limit 90 --extra "$NG" --out bench-out/ng_default_np1_${layers//,/x}
  done
  run --problems poisson2d --layers 20,20,20,20 --np 2 --methods sngd,sngd_paper --method "$NG_SGR" \
      --method "$NG_SGB" --max-it 100000 --time-limit 90 --extra "$NG" --out bench-out/ng_default_np2_20x20x20x20
fi
# the ordering confirmed by a second run at P = 1,341 (sngd_sg = sngd_sg_rel above)
if [[ $group == ng_default_confirm ]]; then
  run --problems poisson2d --layers 20,20,20,20 --methods sngd_sg,sngd,engd_kernel,sngd_paper --max-it 100000 \
      --time-limit 90 --extra "$NG" --out bench-out/ng_default_confirm_np1_20x20x20x20
fi
if [[ $group == all || $group == scaling ]]; then
  echo "== scaling"; $PY -m pinntao.bench.scaling --out bench-out/scaling --max-p 20000
fi
# issue 19, the zoo-wide check of the default candidates at equal wall time (20 s each, one thread, quiet
# machine): sngd (LM) against sngd_sg (undamped + step floor), with sngd_paper and engd_kernel as references
# (about 16 minutes); ng_zoo_default_confirm repeats the two candidates for the ordering (about 8 minutes)
ZOO_NG=poisson1d,poisson2d,heat1d,poisson1d_multiscale,poisson2d_multiscale,helmholtz2d,singular_perturbation,burgers1d,nonlinear1d_neumann,transport1d
if [[ $group == ng_zoo_default ]]; then
  run --problems $ZOO_NG --methods sngd,sngd_sg,sngd_paper,engd_kernel --max-it 100000 --time-limit 20 --extra "$NG" \
      --no-figures --out bench-out/ng_zoo_default
fi
if [[ $group == ng_zoo_default_confirm ]]; then
  run --problems $ZOO_NG --methods sngd_sg,sngd --max-it 100000 --time-limit 20 --extra "$NG" --no-figures \
      --out bench-out/ng_zoo_default_confirm
fi
# issues 19 and 21, mini-batched natural gradient at the row counts the hard problems need: burgers1d with
# 12,288 Halton rows and the 4×32 network (P = 3,297), full batch against batches of 4,096 and 2,048 rows
# (a fresh batch every 10 iterations), 120 s each, 1 rank × 1 thread, quiet machine (about 6 minutes)
MB="-pinn_threads 1 -pinn_layers 32,32,32,32 -pinn_n_interior 10240 -pinn_n_boundary 1024 -pinn_n_initial 1024 -pinn_sampling halton"
MB_LIMITS=(--max-it 100000 --time-limit 120 --extra "$MB")
B4096="sngd_b4096=-pinn_optimizer sngd -pinn_batch_size 4096 -pinn_batch_every 10"
MB_RUN=(--problems burgers1d --methods sngd --method "$B4096"
        --method "sngd_b2048=-pinn_optimizer sngd -pinn_batch_size 2048 -pinn_batch_every 10" "${MB_LIMITS[@]}")
if [[ $group == ng_minibatch ]]; then
  run "${MB_RUN[@]}" --out bench-out/ng_minibatch
fi
if [[ $group == ng_minibatch_confirm ]]; then  # the ordering on a second seed
  run "${MB_RUN[@]}" --seeds 1 --out bench-out/ng_minibatch_confirm
fi
# issue 19, the same burgers1d runs with the sketch capped instead (the adaptive rank grows ~10 per
# iteration on the full batch), seeds 0 and 1 (about 9 + 7 minutes); then the full batch, batches of 4,096
# rows, the cap and the warm one-pass sketch on both cores (mpiexec -n 2), seeds 0 and 1 (9 + 7 minutes)
CAP256="sngd_cap256=-pinn_optimizer sngd -tao_ng_pc_sketch_max_rank 256"
CAP_RUN=(--problems burgers1d --methods sngd --method "$CAP256"
         --method "sngd_cap128=-pinn_optimizer sngd -tao_ng_pc_sketch_max_rank 128" "${MB_LIMITS[@]}")
WARM1="sngd_warm1=-pinn_optimizer sngd_gram -tao_ng_pc_sketch_warm 1 -tao_ng_pc_sketch_passes 1"
if [[ $group == ng_rankcap ]]; then
  run "${CAP_RUN[@]}" --method "$WARM1" --out bench-out/ng_rankcap
fi
if [[ $group == ng_rankcap_confirm ]]; then
  run "${CAP_RUN[@]}" --seeds 1 --out bench-out/ng_rankcap_confirm
fi
NP2_RUN=(--problems burgers1d --np 2 --methods sngd --method "$B4096" --method "$CAP256" "${MB_LIMITS[@]}")
if [[ $group == ng_minibatch_np2 ]]; then
  run "${NP2_RUN[@]}" --method "$WARM1" --out bench-out/ng_minibatch_np2
fi
if [[ $group == ng_minibatch_np2_confirm ]]; then
  run "${NP2_RUN[@]}" --seeds 1 --out bench-out/ng_minibatch_np2_confirm
fi
# issue 21, where low-discrepancy points help: the same sngd run on uniform, Halton and Sobol points, each
# problem's recommended set-up otherwise (so the Fourier problems have their features), 20 s, seeds 0 and 1
# (the second seed is the second run of the ordering; about 22 minutes)
if [[ $group == sampling_zoo ]]; then
  run --problems $ZOO_NG --recommended --method "uniform=-pinn_optimizer sngd -pinn_sampling uniform" \
      --method "halton=-pinn_optimizer sngd -pinn_sampling halton" \
      --method "sobol=-pinn_optimizer sngd -pinn_sampling sobol" --methods "" \
      --seeds 0,1 --max-it 100000 --time-limit 20 --extra "$NG" --no-figures --out bench-out/sampling_zoo
fi
# issue 19, geodesic acceleration (the default sngd since 2026-12-03) against the straight LM step (sngd_lm),
# Transtrum's α = 0.75 and the safeguard rule: the zoo at 20 s (about 15 minutes), poisson2d at three network
# sizes for 90 s (about 19 minutes, then P = 1,341 on 2 ranks), heat1d A2 for 120 s on 1 and 2 ranks
GEO075="sngd_a075=-pinn_optimizer sngd -tao_ng_geodesic_alpha 0.75"
if [[ $group == ng_geodesic_zoo ]]; then
  run --problems $ZOO_NG --methods sngd,sngd_lm,sngd_sg --method "$GEO075" --max-it 100000 --time-limit 20 \
      --extra "$NG" --no-figures --out bench-out/ng_geodesic_zoo
fi
if [[ $group == ng_geodesic_poisson2d ]]; then
  for layers in 64 20,20,20,20 64,48,32,16; do
    run --problems poisson2d --layers $layers --methods sngd,sngd_lm,sngd_sg,engd_kernel --max-it 100000 \
        --time-limit 90 --extra "$NG" --out bench-out/ng_geodesic_np1_${layers//,/x}
  done
  run --problems poisson2d --layers 20,20,20,20 --np 2 --methods sngd,sngd_lm --max-it 100000 --time-limit 90 \
      --extra "$NG" --out bench-out/ng_geodesic_np2_20x20x20x20
fi
if [[ $group == ng_geodesic_confirm ]]; then  # the ordering at P = 1,341 and 5,425 on a second seed
  for layers in 20,20,20,20 64,48,32,16; do
    run --problems poisson2d --layers $layers --methods sngd,sngd_lm --seeds 1 --max-it 100000 --time-limit 90 \
        --extra "$NG" --out bench-out/ng_geodesic_confirm_${layers//,/x}
  done
fi
if [[ $group == ng_geodesic_heat1d_a2 ]]; then
  for np in 1 2; do
    run --problems heat1d --layers 50,50,50 --np $np --methods sngd,sngd_lm --max-it 100000 --time-limit 120 \
        --extra "$NG" --out bench-out/ng_geodesic_heat1d_a2_np$np
  done
fi
# Groups above this one ran `sngd` when it sketched G (today's `sngd_gram`); since ng_jac, `sngd` sketches J.
# issue 19, the Jacobian sketch (then sngd_jac, now sngd) against the sketch of G (then sngd, now sngd_gram), the
# second sitting: poisson2d at the three network sizes for 90 s on 1 rank and P = 1,341 on 2 ranks (about 15
# minutes), heat1d A2 for 120 s (4 minutes), the zoo at 20 s with the issue's references sngd_paper, sngd_damped
# and engd_kernel (17 minutes) and 15 iterations of burgers1d at 12,288 rows (cost per iteration)
if [[ $group == ng_jac ]]; then
  for layers in 20,20,20,20 64 64,48,32,16; do
    run --problems poisson2d --layers $layers --methods sngd_gram,sngd --max-it 100000 --time-limit 90 \
        --extra "$NG" --out bench-out/ng_jac_np1_${layers//,/x}
  done
  run --problems poisson2d --layers 20,20,20,20 --np 2 --methods sngd_gram,sngd --max-it 100000 --time-limit 90 \
      --extra "$NG" --out bench-out/ng_jac_np2_20x20x20x20
  run --problems heat1d --layers 50,50,50 --methods sngd_gram,sngd --max-it 100000 --time-limit 120 \
      --extra "$NG" --out bench-out/ng_jac_heat1d_a2
  run --problems $ZOO_NG --methods sngd_gram,sngd,sngd_paper,sngd_damped,engd_kernel --max-it 100000 \
      --time-limit 20 --extra "$NG" --no-figures --out bench-out/ng_jac_zoo
  run --problems burgers1d --methods sngd_gram,sngd --max-it 15 --time-limit 0 --extra "$MB" --no-figures \
      --out bench-out/ng_jac_burgers12288
fi

# issue 19, cheaper iterations: -tao_ng_pc_sketch_reuse 3 (a fresh Jacobian sketch every 3rd iteration, Rayleigh-Ritz
# in its basis between) against a fresh sketch every iteration: poisson2d at three sizes (P = 5,425 on seeds 0, 1, 2)
# and P = 1,341 on 2 ranks for 90 s, heat1d A2 for 120 s, the zoo at 20 s, 15 iterations of burgers1d at 12,288 rows
# (about 40 minutes)
R3="sngd_r3=-pinn_optimizer sngd -tao_ng_pc_sketch_reuse 3"
if [[ $group == ng_reuse ]]; then
  for layers in 20,20,20,20 64; do
    run --problems poisson2d --layers $layers --methods sngd --method "$R3" --max-it 100000 --time-limit 90 \
        --extra "$NG" --out bench-out/ng_reuse_np1_${layers//,/x}
  done
  run --problems poisson2d --layers 64,48,32,16 --seeds 0,1,2 --methods sngd --method "$R3" --max-it 100000 \
      --time-limit 90 --extra "$NG" --out bench-out/ng_reuse_np1_64x48x32x16
  run --problems poisson2d --layers 20,20,20,20 --np 2 --methods sngd --method "$R3" --max-it 100000 \
      --time-limit 90 --extra "$NG" --out bench-out/ng_reuse_np2_20x20x20x20
  run --problems heat1d --layers 50,50,50 --methods sngd --method "$R3" --max-it 100000 --time-limit 120 \
      --extra "$NG" --out bench-out/ng_reuse_heat1d_a2
  run --problems $ZOO_NG --methods sngd --method "$R3" --max-it 100000 --time-limit 20 --extra "$NG" --no-figures \
      --out bench-out/ng_reuse_zoo
  run --problems burgers1d --methods sngd --method "$R3" --max-it 15 --time-limit 0 --extra "$MB" --no-figures \
      --out bench-out/ng_reuse_burgers12288
fi

# issue 19: -tao_ng_pc_sketch_reuse 3 after the rule "a fresh sketch while the kept rank fills the basis": the rows
# where ng_reuse lost (burgers1d, nonlinear1d_neumann, singular_perturbation at 20 s) and transport1d, and poisson2d
# at P = 1,341 and 5,425 for 90 s (about 10 minutes)
if [[ $group == ng_reuse_grow ]]; then
  run --problems burgers1d,nonlinear1d_neumann,singular_perturbation,transport1d --methods sngd --method "$R3" \
      --max-it 100000 --time-limit 20 --extra "$NG" --no-figures --out bench-out/ng_reuse_grow_zoo
  for layers in 20,20,20,20 64,48,32,16; do
    run --problems poisson2d --layers $layers --methods sngd --method "$R3" --max-it 100000 --time-limit 90 \
        --extra "$NG" --out bench-out/ng_reuse_grow_np1_${layers//,/x}
  done
fi

# issue 19: -tao_ng_pc_sketch_reuse 3 against a fresh sketch every iteration, before making it the default (the
# first 2026-12-04 sitting ran with a second rule, a fresh sketch after a rejected Ritz step, dropped since; the
# second ran the code as it is): the zoo at 20 s,
# poisson2d at three sizes for 90 s on 1 rank and P = 1,341 on 2 ranks, heat1d A2 for 120 s (about 25 minutes);
# ng_reuse_default_confirm: the zoo and P = 1,341 / 5,425 on seed 1 (about 12 minutes)
# a variant of sngd against sngd before it becomes the default: the zoo at 20 s, poisson2d at three sizes for 90 s on
# 1 rank and P = 1,341 on 2 ranks, heat1d A2 for 120 s; $1 the group (the output prefix), $2 the variant
against_sngd() {
  run --problems $ZOO_NG --methods sngd --method "$2" --max-it 100000 --time-limit 20 --extra "$NG" --no-figures \
      --out bench-out/$1_zoo
  for layers in 64 20,20,20,20 64,48,32,16; do
    run --problems poisson2d --layers $layers --methods sngd --method "$2" --max-it 100000 --time-limit 90 \
        --extra "$NG" --out bench-out/$1_np1_${layers//,/x}
  done
  run --problems poisson2d --layers 20,20,20,20 --np 2 --methods sngd --method "$2" --max-it 100000 \
      --time-limit 90 --extra "$NG" --out bench-out/$1_np2_20x20x20x20
  run --problems heat1d --layers 50,50,50 --methods sngd --method "$2" --max-it 100000 --time-limit 120 \
      --extra "$NG" --out bench-out/$1_heat1d_a2
}
if [[ $group == ng_reuse_default ]]; then
  against_sngd ng_reuse_default "$R3"
fi
if [[ $group == ng_reuse_default_confirm ]]; then
  run --problems $ZOO_NG --seeds 1 --methods sngd --method "$R3" --max-it 100000 --time-limit 20 --extra "$NG" \
      --no-figures --out bench-out/ng_reuse_default_confirm_zoo
  for layers in 20,20,20,20 64,48,32,16; do
    run --problems poisson2d --layers $layers --seeds 1 --methods sngd --method "$R3" --max-it 100000 \
        --time-limit 90 --extra "$NG" --out bench-out/ng_reuse_default_confirm_np1_${layers//,/x}
  done
fi
# ng_countsketch (issue 19): sngd's Jacobian sketch with the CountSketch test matrix (-pc_sketch_test auto, the
# default since 2026-12-04) against the Gaussian one (the default before), the zoo at 20 s, poisson2d at three sizes
# for 90 s, P = 1,341 on 2 ranks, heat1d A2 for 120 s (about 25 minutes); ng_countsketch_confirm: seed 1 (9 minutes)
GS="sngd_gauss=-pinn_optimizer sngd -tao_ng_pc_sketch_test gaussian"
if [[ $group == ng_countsketch ]]; then
  against_sngd ng_countsketch "$GS"
fi
if [[ $group == ng_countsketch_confirm ]]; then
  for layers in 20,20,20,20 64,48,32,16; do
    run --problems poisson2d --layers $layers --seeds 1 --methods sngd --method "$GS" --max-it 100000 \
        --time-limit 90 --extra "$NG" --out bench-out/ng_countsketch_confirm_np1_${layers//,/x}
  done
  run --problems poisson2d --layers 20,20,20,20 --np 2 --seeds 1 --methods sngd --method "$GS" --max-it 100000 \
      --time-limit 90 --extra "$NG" --out bench-out/ng_countsketch_confirm_np2_20x20x20x20
fi
# ng_cheaper_j (issue 19): the default sngd alone at the issue's targets, after the cheaper passes over J: poisson2d at
# three sizes for 90 s (1 rank), P = 1,341 on 2 ranks (seeds 0 and 1), heat1d A2 for 120 s, and 15 iterations of
# burgers1d at 12,288 rows on 1 and 2 ranks (cost per iteration; about 12 minutes)
if [[ $group == ng_cheaper_j ]]; then
  for layers in 64 20,20,20,20 64,48,32,16; do
    run --problems poisson2d --layers $layers --methods sngd --max-it 100000 --time-limit 90 --extra "$NG" \
        --out bench-out/ng_cheaper_j_np1_${layers//,/x}
  done
  run --problems poisson2d --layers 20,20,20,20 --np 2 --seeds 0,1 --methods sngd --max-it 100000 --time-limit 90 \
      --extra "$NG" --out bench-out/ng_cheaper_j_np2_20x20x20x20
  run --problems heat1d --layers 50,50,50 --methods sngd --max-it 100000 --time-limit 120 --extra "$NG" \
      --out bench-out/ng_cheaper_j_heat1d_a2
  for np in 1 2; do
    run --problems burgers1d --np $np --methods sngd --max-it 15 --time-limit 0 --extra "$MB" --no-figures \
        --out bench-out/ng_cheaper_j_burgers12288_np$np
  done
fi
