//! The convolution kernels against a naive loop (in f64) written from the
//! definition (PyTorch's `conv2d`: cross-correlation, weight `[F, C/G, KH, KW]`),
//! forward and backward, for every path and every instruction set this CPU has.

use cnnc::compute::conv::{self, ConvShape, Plan, Sizes};
use cnnc::compute::gemm::Isa;
use cnnc::compute::Activation;

/// A shape from its free sizes; the output size follows.
#[allow(clippy::too_many_arguments)]
fn shape(
    c: usize,
    h: usize,
    w: usize,
    f: usize,
    (kh, kw): (usize, usize),
    (sh, sw): (usize, usize),
    (pt, pb, pl, pr): (usize, usize, usize, usize),
    (dh, dw): (usize, usize),
    g: usize,
) -> ConvShape {
    let oh = (h + pt + pb - dh * (kh - 1) - 1) / sh + 1;
    let ow = (w + pl + pr - dw * (kw - 1) - 1) / sw + 1;
    ConvShape {
        c,
        h,
        w,
        f,
        kh,
        kw,
        sh,
        sw,
        pt,
        pb,
        pl,
        pr,
        oh,
        ow,
        dh,
        dw,
        g,
    }
}

struct Case {
    name: &'static str,
    s: ConvShape,
    bias: bool,
    act: Activation,
}

fn cases() -> Vec<Case> {
    let case = |name, s, bias, act| Case { name, s, bias, act };
    use Activation::*;
    vec![
        case(
            "plain direct",
            shape(3, 8, 9, 5, (3, 3), (1, 1), (0, 0, 0, 0), (1, 1), 1),
            true,
            Identity,
        ),
        case(
            "plain",
            shape(8, 10, 10, 16, (3, 3), (1, 1), (0, 0, 0, 0), (1, 1), 1),
            true,
            Relu,
        ),
        case(
            "strided",
            shape(4, 11, 10, 6, (3, 3), (2, 2), (0, 0, 0, 0), (1, 1), 1),
            true,
            Identity,
        ),
        case(
            "strided rows",
            shape(4, 11, 10, 6, (3, 2), (2, 1), (1, 1, 0, 0), (1, 1), 1),
            true,
            Tanh,
        ),
        case(
            "padded asym direct",
            shape(3, 7, 8, 4, (3, 2), (1, 1), (1, 2, 0, 1), (1, 1), 1),
            true,
            Sigmoid,
        ),
        case(
            "padded asym",
            shape(6, 9, 7, 20, (3, 3), (1, 1), (2, 0, 1, 3), (1, 1), 1),
            true,
            LeakyRelu(0.1),
        ),
        case(
            "padded strided",
            shape(5, 13, 12, 9, (5, 5), (3, 2), (2, 1, 2, 0), (1, 1), 1),
            true,
            Identity,
        ),
        case(
            "dilated",
            shape(5, 12, 12, 7, (3, 3), (1, 1), (2, 2, 2, 2), (2, 2), 1),
            true,
            Identity,
        ),
        case(
            "dilated direct",
            shape(2, 11, 13, 3, (3, 3), (1, 1), (1, 0, 2, 1), (2, 3), 1),
            true,
            Relu,
        ),
        case(
            "dilated strided",
            shape(6, 15, 14, 10, (3, 3), (2, 2), (1, 1, 1, 1), (3, 2), 1),
            true,
            Identity,
        ),
        case(
            "grouped direct",
            shape(8, 9, 9, 12, (3, 3), (1, 1), (1, 1, 1, 1), (1, 1), 4),
            true,
            Identity,
        ),
        case(
            "grouped",
            shape(16, 9, 10, 32, (3, 3), (1, 1), (1, 1, 1, 1), (1, 1), 2),
            true,
            Relu,
        ),
        case(
            "grouped strided dilated",
            shape(12, 14, 13, 18, (3, 3), (2, 1), (2, 1, 1, 2), (2, 1), 3),
            false,
            Identity,
        ),
        case(
            "grouped 1x1",
            shape(8, 6, 7, 16, (1, 1), (1, 1), (0, 0, 0, 0), (1, 1), 2),
            true,
            Identity,
        ),
        case(
            "depthwise",
            shape(6, 10, 11, 6, (3, 3), (1, 1), (1, 1, 1, 1), (1, 1), 6),
            true,
            Relu,
        ),
        case(
            "depthwise x2",
            shape(5, 9, 8, 10, (3, 3), (1, 1), (1, 1, 1, 1), (1, 1), 5),
            true,
            Identity,
        ),
        case(
            "depthwise strided",
            shape(4, 13, 12, 4, (3, 3), (2, 2), (1, 0, 1, 0), (1, 1), 4),
            true,
            Identity,
        ),
        case(
            "depthwise dilated",
            shape(3, 12, 12, 6, (3, 3), (1, 1), (2, 2, 2, 2), (2, 2), 3),
            false,
            Tanh,
        ),
        case(
            "depthwise 5x5 asym",
            shape(7, 9, 10, 7, (5, 3), (1, 2), (3, 1, 0, 2), (1, 1), 7),
            true,
            Identity,
        ),
        case(
            "depthwise wide rows",
            shape(4, 6, 37, 4, (3, 3), (1, 1), (1, 1, 1, 1), (1, 1), 4),
            true,
            Relu,
        ),
        case(
            "depthwise wide unpadded",
            shape(3, 5, 21, 3, (3, 3), (1, 1), (0, 0, 0, 0), (1, 1), 3),
            false,
            Identity,
        ),
        case(
            "depthwise unpadded",
            shape(8, 7, 7, 16, (3, 3), (1, 1), (0, 0, 0, 0), (1, 1), 8),
            false,
            Identity,
        ),
        case(
            "bias off",
            shape(8, 10, 10, 16, (3, 3), (1, 1), (1, 1, 1, 1), (1, 1), 1),
            false,
            Relu,
        ),
        case(
            "bias off direct",
            shape(3, 8, 9, 5, (3, 3), (1, 1), (0, 0, 0, 0), (1, 1), 1),
            false,
            Identity,
        ),
        case(
            "1x1",
            shape(16, 6, 7, 24, (1, 1), (1, 1), (0, 0, 0, 0), (1, 1), 1),
            true,
            Identity,
        ),
        // Strided rows of at least 16 outputs take the blocked path, through the
        // residue-grouped padded copy: ResNet's 3x3/2 (a smaller map), an odd left
        // padding and an odd row, a stride of 3 with dilation, rows strided alone
        // and groups.
        case(
            "strided blocked",
            shape(6, 33, 34, 9, (3, 3), (2, 2), (1, 1, 1, 1), (1, 1), 1),
            true,
            Relu,
        ),
        case(
            "strided blocked odd padding",
            shape(3, 9, 37, 20, (3, 4), (2, 2), (0, 2, 1, 0), (1, 1), 1),
            true,
            Identity,
        ),
        case(
            "strided blocked by 3 dilated",
            shape(4, 12, 56, 5, (3, 3), (1, 3), (2, 2, 2, 1), (2, 2), 1),
            false,
            Tanh,
        ),
        case(
            "strided blocked rows only",
            shape(5, 21, 18, 7, (3, 3), (2, 1), (1, 1, 1, 1), (1, 1), 1),
            true,
            Identity,
        ),
        // Rows of exactly one AVX-512 vector: tiles of two output rows, an odd
        // count leaving the last row alone, strided and not.
        case(
            "strided blocked rows of 16",
            shape(5, 13, 31, 7, (3, 3), (2, 2), (1, 1, 1, 1), (1, 1), 1),
            true,
            Tanh,
        ),
        case(
            "blocked rows of 16",
            shape(4, 9, 16, 20, (3, 3), (1, 1), (1, 1, 1, 1), (1, 1), 1),
            false,
            Relu,
        ),
        case(
            "grouped strided blocked",
            shape(8, 8, 33, 6, (3, 3), (2, 2), (1, 1, 1, 1), (1, 1), 2),
            true,
            Identity,
        ),
        case(
            "1x1 strided",
            shape(16, 7, 7, 24, (1, 1), (2, 2), (0, 0, 0, 0), (1, 1), 1),
            true,
            Identity,
        ),
        case(
            "1x1 padded",
            shape(3, 5, 5, 4, (1, 1), (1, 1), (1, 0, 0, 1), (1, 1), 1),
            true,
            Identity,
        ),
        case(
            "wide",
            shape(32, 12, 12, 48, (3, 3), (1, 1), (1, 1, 1, 1), (1, 1), 1),
            true,
            Relu,
        ),
        case(
            "wide odd",
            shape(20, 9, 11, 40, (3, 3), (1, 1), (1, 1, 1, 1), (1, 1), 1),
            true,
            Identity,
        ),
        case(
            "conv64 16x16",
            shape(64, 16, 16, 64, (3, 3), (1, 1), (1, 1, 1, 1), (1, 1), 1),
            true,
            Identity,
        ),
        case(
            "conv64",
            shape(64, 32, 32, 64, (3, 3), (1, 1), (1, 1, 1, 1), (1, 1), 1),
            true,
            Identity,
        ),
        case(
            "blocked",
            shape(8, 20, 20, 16, (3, 3), (1, 1), (1, 1, 1, 1), (1, 1), 1),
            true,
            Relu,
        ),
        case(
            "blocked unpadded odd",
            shape(5, 19, 23, 13, (3, 3), (1, 1), (0, 0, 0, 0), (1, 1), 1),
            true,
            Tanh,
        ),
        case(
            "blocked asym",
            shape(6, 17, 21, 25, (3, 3), (1, 1), (2, 0, 1, 2), (1, 1), 1),
            true,
            LeakyRelu(0.2),
        ),
        case(
            "blocked dilated",
            shape(7, 20, 22, 9, (3, 3), (1, 1), (2, 1, 2, 0), (2, 2), 1),
            true,
            Identity,
        ),
        case(
            "blocked grouped",
            shape(12, 18, 18, 30, (3, 3), (1, 1), (1, 1, 1, 1), (1, 1), 3),
            true,
            Sigmoid,
        ),
        case(
            "blocked bias off 5x5",
            shape(4, 20, 36, 7, (5, 5), (1, 1), (2, 2, 2, 2), (1, 1), 1),
            false,
            Identity,
        ),
        case(
            "blocked 1x3",
            shape(6, 5, 40, 20, (1, 3), (1, 1), (0, 0, 1, 1), (1, 1), 1),
            true,
            Identity,
        ),
        case(
            "blocked chunked relu",
            shape(48, 20, 20, 24, (3, 3), (1, 1), (1, 1, 1, 1), (1, 1), 1),
            true,
            Relu,
        ),
        case(
            "blocked 3 channels",
            shape(3, 32, 32, 32, (3, 3), (1, 1), (1, 1, 1, 1), (1, 1), 1),
            true,
            Relu,
        ),
        case(
            "winograd odd",
            shape(32, 13, 11, 40, (3, 3), (1, 1), (1, 1, 1, 1), (1, 1), 1),
            true,
            Relu,
        ),
        case(
            "winograd unpadded odd bias off",
            shape(36, 13, 11, 32, (3, 3), (1, 1), (0, 0, 0, 0), (1, 1), 1),
            false,
            Identity,
        ),
        case(
            "winograd asym",
            shape(32, 10, 9, 33, (3, 3), (1, 1), (1, 0, 0, 1), (1, 1), 1),
            true,
            Tanh,
        ),
        case(
            "winograd long rows",
            shape(32, 6, 70, 32, (3, 3), (1, 1), (1, 1, 1, 1), (1, 1), 1),
            true,
            Identity,
        ),
        case(
            "winograd relu bias off",
            shape(64, 32, 32, 64, (3, 3), (1, 1), (1, 1, 1, 1), (1, 1), 1),
            false,
            Relu,
        ),
    ]
}

/// The blocked path's cases: every one must take it.
const BLOCKED: [&str; 9] = [
    "blocked",
    "blocked unpadded odd",
    "blocked asym",
    "blocked dilated",
    "blocked grouped",
    "blocked bias off 5x5",
    "blocked 1x3",
    "blocked chunked relu",
    "blocked 3 channels",
];

/// The Winograd path's cases: every one must take it.
const WINOGRAD: [&str; 8] = [
    "conv64 16x16",
    "conv64",
    "wide",
    "winograd odd",
    "winograd unpadded odd bias off",
    "winograd asym",
    "winograd long rows",
    "winograd relu bias off",
];

/// Deterministic values in [-1, 1).
fn data(len: usize, seed: u32) -> Vec<f32> {
    let mut i = seed.wrapping_mul(2_654_435_761).wrapping_add(12345);
    (0..len)
        .map(|_| {
            i = i.wrapping_mul(1_664_525).wrapping_add(1_013_904_223);
            (i >> 8) as f32 / (1u32 << 23) as f32 - 1.0
        })
        .collect()
}

/// The input cell under tap `(kh, kw)` of output `(oh, ow)`, or `None` in the padding.
fn input_at(s: &ConvShape, oh: usize, ow: usize, kh: usize, kw: usize) -> Option<(usize, usize)> {
    let ih = (oh * s.sh + kh * s.dh).checked_sub(s.pt)?;
    let iw = (ow * s.sw + kw * s.dw).checked_sub(s.pl)?;
    (ih < s.h && iw < s.w).then_some((ih, iw))
}

/// Calls `visit([o, ci, kh, kw, oh, ow, ih, iw])` for every product term of the
/// convolution of one sample: output channel `o`, input channel `ci` of its group.
fn each_term(s: &ConvShape, mut visit: impl FnMut([usize; 8])) {
    for o in 0..s.f {
        for ci in 0..s.c / s.g {
            for kh in 0..s.kh {
                for kw in 0..s.kw {
                    for oh in 0..s.oh {
                        for ow in 0..s.ow {
                            if let Some((ih, iw)) = input_at(s, oh, ow, kh, kw) {
                                visit([o, ci, kh, kw, oh, ow, ih, iw]);
                            }
                        }
                    }
                }
            }
        }
    }
}

struct Reference {
    y: Vec<f64>,
    dw: Vec<f64>,
    db: Vec<f64>,
    dx: Vec<f64>,
}

fn reference(
    s: &ConvShape,
    act: Activation,
    x: &[f32],
    w: &[f32],
    b: Option<&[f32]>,
    dy: &[f32],
    n: usize,
) -> Reference {
    let (cg, fg) = (s.c / s.g, s.f / s.g);
    let (il, ol) = (s.c * s.h * s.w, s.f * s.oh * s.ow);
    let mut y = vec![0.0f64; n * ol];
    let mut dw = vec![0.0f64; s.f * cg * s.kh * s.kw];
    let mut db = vec![0.0f64; s.f];
    let mut dx = vec![0.0f64; n * il];
    for i in 0..n {
        each_term(s, |[o, ci, kh, kw, oh, ow, ih, iw]| {
            let c = o / fg * cg + ci;
            let xi = i * il + (c * s.h + ih) * s.w + iw;
            let wi = ((o * cg + ci) * s.kh + kh) * s.kw + kw;
            let yi = i * ol + (o * s.oh + oh) * s.ow + ow;
            y[yi] += f64::from(w[wi]) * f64::from(x[xi]);
            dw[wi] += f64::from(dy[yi]) * f64::from(x[xi]);
            dx[xi] += f64::from(dy[yi]) * f64::from(w[wi]);
        });
        for o in 0..s.f {
            for p in 0..s.oh * s.ow {
                let yi = i * ol + o * s.oh * s.ow + p;
                db[o] += f64::from(dy[yi]);
                y[yi] = f64::from(act.apply((y[yi] + b.map_or(0.0, |b| f64::from(b[o]))) as f32));
            }
        }
    }
    Reference { y, dw, db, dx }
}

/// `max |got - want| / max |want|` must stay within 1e-4.
fn check(case: &str, isa: Isa, what: &str, got: &[f32], want: &[f64]) {
    assert_eq!(got.len(), want.len());
    let scale = want.iter().fold(1e-3f64, |m, v| m.max(v.abs()));
    let (worst, at) = got
        .iter()
        .zip(want)
        .enumerate()
        .map(|(i, (&g, &w))| ((f64::from(g) - w).abs(), i))
        .fold((0.0f64, 0), |a, b| if b.0 > a.0 || b.0.is_nan() { b } else { a });
    assert!(
        worst / scale <= 1e-4 && got.iter().all(|v| v.is_finite()),
        "{case} on {isa}: {what}[{at}] = {} but the reference is {} (relative error {:e})",
        got[at],
        want[at],
        worst / scale
    );
}

fn run(case: &Case, isa: Isa) {
    let (s, n) = (&case.s, 2);
    let x = data(n * s.input_len(), 1);
    let w = data(s.weight_len(), 2);
    let b = data(s.f, 3);
    let dy = data(n * s.output_len(), 4);
    let b = case.bias.then_some(&b[..]);
    let want = reference(s, case.act, &x, &w, b, &dy, n);
    for plan in Plan::ALL.into_iter().filter(|&p| s.allows(p)) {
        for sizes in [Sizes::Constant, Sizes::RunTime] {
            run_on(case, isa, plan, sizes, &x, &w, b, &dy, &want);
        }
    }
}

/// Forward and backward through `plan`, with the loops for `sizes`, against the
/// reference.
#[allow(clippy::too_many_arguments)]
fn run_on(
    case: &Case,
    isa: Isa,
    plan: Plan,
    sizes: Sizes,
    x: &[f32],
    w: &[f32],
    b: Option<&[f32]>,
    dy: &[f32],
    want: &Reference,
) {
    let (s, n) = (&case.s, 2);
    let name = format!("{} ({plan:?}, {sizes:?} sizes)", case.name);
    let name = name.as_str();
    let mut scratch = vec![f32::NAN; s.scratch_len_for(plan)];
    if plan == s.plan() {
        assert_eq!(s.scratch_len(), scratch.len());
    }

    let mut y = vec![f32::NAN; n * s.output_len()];
    conv::forward_as(plan, s, sizes, case.act.into(), x, w, b, &mut y, n, &mut scratch);
    check(name, isa, "y", &y, &want.y);

    // Inference's fused residual join: the added tensor goes in after the bias,
    // before the activation, exactly as a separate `act(conv + add)` pass would.
    let add = data(n * s.output_len(), 7);
    let mut plain = vec![f32::NAN; n * s.output_len()];
    conv::forward_as(
        plan,
        s,
        sizes,
        Activation::Identity.into(),
        x,
        w,
        b,
        &mut plain,
        n,
        &mut scratch,
    );
    let separate: Vec<f32> = plain.iter().zip(&add).map(|(&v, &r)| case.act.apply(v + r)).collect();
    let mut fused = vec![f32::NAN; n * s.output_len()];
    let post = conv::Epilogue {
        add: Some(&add),
        act: case.act,
    };
    conv::forward_as(plan, s, sizes, post, x, w, b, &mut fused, n, &mut scratch);
    assert_eq!(
        fused, separate,
        "{name} on {isa}: the fused add differs from a separate pass"
    );

    // Backward adds into dw and db and overwrites dx.
    let (dw0, db0) = (data(s.weight_len(), 5), data(s.f, 6));
    let (mut dw, mut db) = (dw0.clone(), db0.clone());
    let mut dx = vec![f32::NAN; n * s.input_len()];
    scratch.fill(f32::NAN);
    let dbo = case.bias.then_some(&mut db[..]);
    conv::backward_as(plan, s, sizes, x, w, dy, &mut dw, dbo, Some(&mut dx), n, &mut scratch);
    let plus = |base: &[f32], d: &[f64]| base.iter().zip(d).map(|(&a, &b)| f64::from(a) + b).collect::<Vec<_>>();
    check(name, isa, "dw", &dw, &plus(&dw0, &want.dw));
    check(name, isa, "dx", &dx, &want.dx);
    if case.bias {
        check(name, isa, "db", &db, &plus(&db0, &want.db));
    } else {
        assert_eq!(db, db0, "{name}: db was written with the bias off");
    }

    // Without dx, the parameter gradients are the same.
    let mut dw2 = dw0.clone();
    conv::backward_as(plan, s, sizes, x, w, dy, &mut dw2, None, None, n, &mut scratch);
    check(name, isa, "dw without dx", &dw2, &plus(&dw0, &want.dw));
}

#[test]
fn conv_matches_the_definition_on_every_path_and_isa() {
    crate::on_every_isa(|isa| {
        for case in cases() {
            run(&case, isa);
        }
    });
}

/// The cases cover every plan.
#[test]
fn cases_cover_every_plan() {
    let plans: Vec<Plan> = cases().iter().map(|c| c.s.plan()).collect();
    for plan in Plan::ALL {
        assert!(plans.contains(&plan), "no case takes {plan:?}");
    }
    assert!(cases().iter().any(|c| c.s.pointwise()));
    for case in cases()
        .iter()
        .filter(|c| BLOCKED.contains(&c.name) || c.name.contains("strided blocked"))
    {
        assert_eq!(case.s.plan(), Plan::Blocked, "{}", case.name);
    }
    for case in cases().iter().filter(|c| WINOGRAD.contains(&c.name)) {
        assert_eq!(case.s.plan(), Plan::Winograd, "{}", case.name);
    }
}
