//! Properties of the Sinkhorn OT loss (src/distill/ot.rs): marginals, value, recovery of a known
//! optimal permutation, gradient flow (student only, plan detached), and padding.
use burn::prelude::*;
use optical::distill::ot::{self, SinkhornSettings};
use rand::{Rng, SeedableRng, rngs::StdRng};

fn randn(rng: &mut StdRng, n: usize) -> Vec<f32> {
    // Box–Muller: enough for test data, no extra dependency.
    (0..n)
        .map(|_| {
            let u1: f32 = rng.random_range(1e-7..1.0);
            let u2: f32 = rng.random_range(0.0..1.0);
            (-2.0 * u1.ln()).sqrt() * (2.0 * std::f32::consts::PI * u2).cos()
        })
        .collect()
}

fn t3(v: Vec<f32>, shape: [usize; 3], device: &Device) -> Tensor<3> {
    Tensor::from_data(TensorData::new(v, shape), device)
}
fn t2(v: Vec<f32>, shape: [usize; 2], device: &Device) -> Tensor<2> {
    Tensor::from_data(TensorData::new(v, shape), device)
}
fn vec_of<const D: usize>(t: Tensor<D>) -> Vec<f32> {
    t.into_data().try_into_vec_as::<f32>().unwrap()
}

/// Mask rows: `lens[b]` leading ones, then zeros; optionally the first token masked too (like a
/// `[CLS]`).
fn mask(lens: &[usize], len: usize, mask_first: bool) -> Vec<f32> {
    let mut m = vec![0.0; lens.len() * len];
    for (b, &l) in lens.iter().enumerate() {
        for j in 0..l {
            m[b * len + j] = if mask_first && j == 0 { 0.0 } else { 1.0 };
        }
    }
    m
}

/// Plain-Rust cosine cost for pair `b`.
fn cost_direct(s: &[f32], t: &[f32], b: usize, m: usize, n: usize, d: usize) -> Vec<f32> {
    let row = |x: &[f32], i: usize| -> Vec<f32> { x[i * d..(i + 1) * d].to_vec() };
    let mut c = vec![0.0; m * n];
    for j in 0..m {
        let sj = row(s, b * m + j);
        let ns = sj.iter().map(|x| x * x).sum::<f32>().sqrt().max(1e-8);
        for k in 0..n {
            let tk = row(t, b * n + k);
            let nt = tk.iter().map(|x| x * x).sum::<f32>().sqrt().max(1e-8);
            let dot: f32 = sj.iter().zip(&tk).map(|(a, b)| a * b).sum();
            c[j * n + k] = 1.0 - dot / (ns * nt);
        }
    }
    c
}

struct Problem {
    b: usize,
    m: usize,
    n: usize,
    d: usize,
    s: Vec<f32>,
    t: Vec<f32>,
    sm: Vec<f32>,
    tm: Vec<f32>,
}

impl Problem {
    /// The OT loss of this problem with the default solver settings, on `device`.
    fn solve(&self, device: &Device) -> ot::OtOutput {
        ot::ot_loss(
            t3(self.s.clone(), [self.b, self.m, self.d], device),
            t3(self.t.clone(), [self.b, self.n, self.d], device),
            t2(self.sm.clone(), [self.b, self.m], device),
            t2(self.tm.clone(), [self.b, self.n], device),
            SinkhornSettings::default(),
        )
    }
}

fn problem(seed: u64) -> Problem {
    let mut rng = StdRng::seed_from_u64(seed);
    let (b, m, n, d) = (3, 7, 9, 16);
    let s = randn(&mut rng, b * m * d);
    let t = randn(&mut rng, b * n * d);
    // Different lengths per pair, first token masked like a [CLS].
    let sm = mask(&[7, 4, 5], m, true);
    let tm = mask(&[9, 6, 3], n, true);
    Problem { b, m, n, d, s, t, sm, tm }
}

#[test]
fn plan_marginals_match_uniform_over_unmasked_tokens() {
    let device = Device::default();
    let p = problem(1);
    let out = p.solve(&device);
    let plan = vec_of(out.plan);
    for b in 0..p.b {
        let sm = &p.sm[b * p.m..(b + 1) * p.m];
        let tm = &p.tm[b * p.n..(b + 1) * p.n];
        let cm: f32 = sm.iter().sum();
        let cn: f32 = tm.iter().sum();
        let pb = &plan[b * p.m * p.n..(b + 1) * p.m * p.n];
        for j in 0..p.m {
            let row: f32 = (0..p.n).map(|k| pb[j * p.n + k]).sum();
            let want = sm[j] / cm;
            assert!((row - want).abs() < 1e-4, "pair {b} row {j}: {row} vs {want}");
        }
        for k in 0..p.n {
            let col: f32 = (0..p.m).map(|j| pb[j * p.n + k]).sum();
            let want = tm[k] / cn;
            assert!((col - want).abs() < 1e-4, "pair {b} col {k}: {col} vs {want}");
        }
        let total: f32 = pb.iter().sum();
        assert!((total - 1.0).abs() < 1e-4, "pair {b}: total mass {total}");
    }
}

#[test]
fn loss_equals_direct_sum_of_plan_times_cost() {
    let device = Device::default();
    let p = problem(2);
    let out = p.solve(&device);
    let plan = vec_of(out.plan);
    let per_pair = vec_of(out.per_pair);
    let loss = vec_of(out.loss)[0];
    let mut mean = 0.0;
    for b in 0..p.b {
        let c = cost_direct(&p.s, &p.t, b, p.m, p.n, p.d);
        let pb = &plan[b * p.m * p.n..(b + 1) * p.m * p.n];
        let direct: f32 = pb.iter().zip(&c).map(|(p, c)| p * c).sum();
        assert!((direct - per_pair[b]).abs() < 1e-5, "pair {b}: {direct} vs {}", per_pair[b]);
        // The cost of random vectors is near 1, so the loss is too: a sanity range.
        assert!(direct > 0.3 && direct < 1.7, "pair {b}: {direct}");
        mean += direct / p.b as f32;
    }
    assert!((mean - loss).abs() < 1e-5, "{mean} vs {loss}");
}

/// Largest entry-wise distance of an `n × n` plan to the permutation plan (1/n on (j, perm[j])).
fn distance_to_permutation(plan: &[f32], perm: &[usize]) -> f32 {
    let n = perm.len();
    let mut err: f32 = 0.0;
    for j in 0..n {
        for k in 0..n {
            let want = if perm[j] == k { 1.0 / n as f32 } else { 0.0 };
            err = err.max((plan[j * n + k] - want).abs());
        }
    }
    err
}

#[test]
fn small_epsilon_recovers_the_optimal_permutation() {
    let device = Device::default();
    let mut rng = StdRng::seed_from_u64(3);
    let (n, d) = (6, 32);
    let t = randn(&mut rng, n * d);
    // Student token j is teacher token perm[j] plus a little noise: the optimal plan is the
    // permutation (each random direction is far closer to itself than to any other).
    let perm = [3usize, 0, 5, 1, 4, 2];
    let noise = randn(&mut rng, n * d);
    let mut s = vec![0.0; n * d];
    for j in 0..n {
        for i in 0..d {
            s[j * d + i] = t[perm[j] * d + i] + 0.1 * noise[j * d + i];
        }
    }
    let ones = vec![1.0; n];
    let mut prev_err = f32::INFINITY;
    for eps in [0.5f32, 0.1, 0.02, 0.005] {
        let out = ot::ot_loss(
            t3(s.clone(), [1, n, d], &device),
            t3(t.clone(), [1, n, d], &device),
            t2(ones.clone(), [1, n], &device),
            t2(ones.clone(), [1, n], &device),
            SinkhornSettings { epsilon: eps, iterations: 300, centre: false },
        );
        let err = distance_to_permutation(&vec_of(out.plan), &perm);
        assert!(err <= prev_err + 1e-6, "ε={eps}: error {err} grew from {prev_err}");
        prev_err = err;
    }
    assert!(prev_err < 1e-3, "plan at ε=0.005 is {prev_err} away from the permutation");
}

/// Anisotropic states (a large direction shared by every token, as in e5): the raw cosine cost
/// is nearly flat and the plan blurs; on centred states the same ε recovers the alignment.
#[test]
fn centring_recovers_the_alignment_of_anisotropic_states() {
    let device = Device::default();
    let mut rng = StdRng::seed_from_u64(5);
    let (n, d) = (6, 32);
    let common = randn(&mut rng, d);
    let own = randn(&mut rng, n * d);
    let t: Vec<f32> = (0..n * d).map(|i| 8.0 * common[i % d] + own[i]).collect();
    let perm = [2usize, 4, 0, 5, 3, 1];
    let noise = randn(&mut rng, n * d);
    let s: Vec<f32> = (0..n * d).map(|i| t[perm[i / d] * d + i % d] + 0.1 * noise[i]).collect();
    let ones = vec![1.0; n];
    let error = |centre: bool| {
        let out = ot::ot_loss(
            t3(s.clone(), [1, n, d], &device),
            t3(t.clone(), [1, n, d], &device),
            t2(ones.clone(), [1, n], &device),
            t2(ones.clone(), [1, n], &device),
            SinkhornSettings { epsilon: 0.02, iterations: 300, centre },
        );
        distance_to_permutation(&vec_of(out.plan), &perm)
    };
    let (raw, centred) = (error(false), error(true));
    assert!(raw > 0.02, "the raw cosine plan should be blurred by the shared direction (error {raw})");
    assert!(centred < 1e-3, "the centred plan is {centred} away from the alignment (raw: {raw})");
}

#[test]
fn gradients_reach_only_the_student_and_not_through_the_plan() {
    let device = Device::default().autodiff();
    let p = problem(4);
    let s = t3(p.s.clone(), [p.b, p.m, p.d], &device).require_grad();
    let t = t3(p.t.clone(), [p.b, p.n, p.d], &device).require_grad();
    let out = ot::ot_loss(
        s.clone(),
        t.clone(),
        t2(p.sm.clone(), [p.b, p.m], &device),
        t2(p.tm.clone(), [p.b, p.n], &device),
        SinkhornSettings::default(),
    );
    assert!(!out.plan.is_autodiff() || !out.plan.is_tracked(), "the plan must be a constant");
    let plan = vec_of(out.plan.clone());
    let grads = out.loss.backward();
    assert!(t.grad(&grads).is_none(), "teacher states must get no gradient");
    let gs = vec_of(s.grad(&grads).expect("student states get a gradient"));

    // With P fixed, ∂/∂S ⟨P, C(S)⟩ / B: check a few coordinates by central differences on the
    // plain-Rust cost. A gradient that went through the solver would not match.
    let f = |s: &[f32]| -> f32 {
        let mut total = 0.0;
        for b in 0..p.b {
            let c = cost_direct(s, &p.t, b, p.m, p.n, p.d);
            let pb = &plan[b * p.m * p.n..(b + 1) * p.m * p.n];
            total += pb.iter().zip(&c).map(|(p, c)| p * c).sum::<f32>();
        }
        total / p.b as f32
    };
    let h = 1e-2;
    let mut checked = 0;
    for idx in [5usize, 17, 40, 100, 130, 200, 250, 300] {
        let (b, j) = (idx / (p.m * p.d), (idx / p.d) % p.m);
        let mut sp = p.s.clone();
        sp[idx] += h;
        let mut sn = p.s.clone();
        sn[idx] -= h;
        let fd = (f(&sp) - f(&sn)) / (2.0 * h);
        if p.sm[b * p.m + j] == 0.0 {
            assert!(gs[idx].abs() < 1e-9, "masked token got gradient {}", gs[idx]);
            continue;
        }
        assert!((fd - gs[idx]).abs() < 2e-3 + 1e-2 * fd.abs(), "coord {idx}: fd {fd} vs autodiff {}", gs[idx]);
        checked += 1;
    }
    assert!(checked >= 4);
}

#[test]
fn padded_tokens_carry_no_mass_and_do_not_change_the_loss() {
    let device = Device::default();
    let p = problem(5);
    let settings = SinkhornSettings::default();
    // Garbage in the padded and masked positions must not matter.
    let mut s_garbage = p.s.clone();
    let mut t_garbage = p.t.clone();
    for (i, x) in s_garbage.iter_mut().enumerate() {
        if p.sm[i / p.d] == 0.0 {
            *x = 1e3 * (i as f32).sin();
        }
    }
    for (i, x) in t_garbage.iter_mut().enumerate() {
        if p.tm[i / p.d] == 0.0 {
            *x = -1e3 * (i as f32).cos();
        }
    }
    let run = |s: Vec<f32>, t: Vec<f32>| {
        ot::ot_loss(
            t3(s, [p.b, p.m, p.d], &device),
            t3(t, [p.b, p.n, p.d], &device),
            t2(p.sm.clone(), [p.b, p.m], &device),
            t2(p.tm.clone(), [p.b, p.n], &device),
            settings,
        )
    };
    let clean = run(p.s.clone(), p.t.clone());
    let dirty = run(s_garbage, t_garbage);
    let plan = vec_of(dirty.plan);
    for b in 0..p.b {
        for j in 0..p.m {
            for k in 0..p.n {
                let v = plan[(b * p.m + j) * p.n + k];
                assert!(v.is_finite());
                if p.sm[b * p.m + j] == 0.0 || p.tm[b * p.n + k] == 0.0 {
                    assert!(v < 1e-20, "masked cell ({b},{j},{k}) has mass {v}");
                }
            }
        }
    }
    let (a, b) = (vec_of(clean.per_pair), vec_of(dirty.per_pair));
    for (x, y) in a.iter().zip(&b) {
        assert!((x - y).abs() < 1e-5, "{a:?} vs {b:?}");
    }

    // The same pair alone, cut to its real length, gives the same loss as inside a padded batch.
    let (m1, n1) = (4, 6); // pair 1: student len 4, teacher len 6 (first token masked)
    let s1 = p.s[p.m * p.d..p.m * p.d + m1 * p.d].to_vec();
    let t1 = p.t[p.n * p.d..p.n * p.d + n1 * p.d].to_vec();
    let alone = ot::ot_loss(
        t3(s1, [1, m1, p.d], &device),
        t3(t1, [1, n1, p.d], &device),
        t2(p.sm[p.m..p.m + m1].to_vec(), [1, m1], &device),
        t2(p.tm[p.n..p.n + n1].to_vec(), [1, n1], &device),
        settings,
    );
    let alone = vec_of(alone.per_pair)[0];
    assert!((alone - a[1]).abs() < 1e-5, "alone {alone} vs in batch {}", a[1]);
}

#[test]
fn mse_equals_direct_pooled_squared_distance() {
    let device = Device::default();
    let p = problem(6);
    let got = vec_of(ot::mse_loss(
        t3(p.s.clone(), [p.b, p.m, p.d], &device),
        t3(p.t.clone(), [p.b, p.n, p.d], &device),
        t2(p.sm.clone(), [p.b, p.m], &device),
        t2(p.tm.clone(), [p.b, p.n], &device),
    ))[0];
    let pool = |x: &[f32], msk: &[f32], b: usize, l: usize| -> Vec<f32> {
        let mut out = vec![0.0; p.d];
        let cnt: f32 = msk[b * l..(b + 1) * l].iter().sum();
        for j in 0..l {
            for i in 0..p.d {
                out[i] += msk[b * l + j] * x[(b * l + j) * p.d + i] / cnt;
            }
        }
        out
    };
    let mut want = 0.0;
    for b in 0..p.b {
        let ps = pool(&p.s, &p.sm, b, p.m);
        let pt = pool(&p.t, &p.tm, b, p.n);
        want += ps.iter().zip(&pt).map(|(a, b)| (a - b) * (a - b)).sum::<f32>() / p.b as f32;
    }
    assert!((got - want).abs() < 1e-4 * want.max(1.0), "{got} vs {want}");
}
