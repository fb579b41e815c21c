//! The options of conv and pooling windows (`kernel`, `stride`, `pad`, `round`, and
//! conv's `dilation`, `groups`, `bias`): defaults, repeats, ranges, and the output
//! size with its explanation.

use super::shape::{same_padding, Axis, AxisError};
use crate::diag::{Code, Diagnostic, Diagnostics, Span};
use crate::ir;
use crate::syntax::ast::{self, Padding, Rounding, Side, WindowOptionKind};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    Conv,
    MaxPool,
    AvgPool,
    /// v3: symmetric padding only, no `round`, and `output_pad`.
    ConvTranspose,
}

impl Kind {
    fn word(self) -> &'static str {
        match self {
            Kind::Conv => "conv",
            Kind::MaxPool => "maxpool",
            Kind::AvgPool => "avgpool",
            Kind::ConvTranspose => "convtranspose",
        }
    }

    /// Whether the layer has weights (dilation, groups and bias apply).
    fn has_weights(self) -> bool {
        match self {
            Kind::Conv | Kind::ConvTranspose => true,
            Kind::MaxPool | Kind::AvgPool => false,
        }
    }
}

/// Padding as written; `pad same` is resolved once the input size is known.
#[derive(Debug, Clone, Copy)]
enum Pad {
    Explicit { before: [usize; 2], after: [usize; 2] },
    Same,
}

/// A window's options after defaults, before the input size is known.
#[derive(Debug, Clone, Copy)]
pub struct Spec {
    kind: Kind,
    size: [usize; 2],
    stride: [usize; 2],
    pad: Pad,
    pad_span: Span,
    round: Option<Rounding>,
    /// The spacing of the taps (conv only; 1 for pooling).
    pub dilation: [usize; 2],
    /// The channel groups (conv only), and where they were written.
    pub groups: usize,
    pub groups_span: Span,
    /// Whether a conv layer has a bias (`bias off` clears it).
    pub bias: bool,
    /// v3, convtranspose: `output_pad`, and where it was written.
    pub output_pad: [usize; 2],
    pub output_pad_span: Span,
}

impl Spec {
    /// The kernel size per axis.
    pub fn size(&self) -> [usize; 2] {
        self.size
    }

    pub fn stride(&self) -> [usize; 2] {
        self.stride
    }

    /// The cells the window covers on each axis, `D·(K-1) + 1`: what the output
    /// arithmetic, `pad same` and the padding limit use.
    fn span(&self) -> [usize; 2] {
        std::array::from_fn(|i| {
            self.dilation[i]
                .saturating_mul(self.size[i].saturating_sub(1))
                .saturating_add(1)
        })
    }
}

/// Lowers a window's options: repeats, defaults, zero sizes, padding limits.
/// Returns `None` after reporting an error.
pub fn lower(
    kind: Kind,
    keyword: Span,
    pool_kernel: Option<&ast::Spanned<Vec<u64>>>,
    options: &[ast::WindowOption],
    diags: &mut Diagnostics,
) -> Option<Spec> {
    let errors_before = diags.len();
    let written = read_options(kind, pool_kernel, options, diags);
    if kind.has_weights() && !written.seen.iter().any(|(w, _)| *w == "kernel") {
        diags.push(
            Diagnostic::new(
                Code::Missing,
                keyword,
                format!("a {} layer needs a kernel size", kind.word()),
            )
            .with_hint("add `kernel K`, for example `kernel 3`"),
        );
    }
    let kernel = written.kernel?;
    if kernel.contains(&0) {
        let span = option_span(options, "kernel")
            .or(pool_kernel.map(|k| k.span))
            .unwrap_or(keyword);
        diags.push(
            Diagnostic::new(Code::Size, span, "a kernel size of 0 is not allowed")
                .with_hint("kernels are at least 1x1"),
        );
    }
    let stride = written.stride.unwrap_or(match kind {
        Kind::Conv | Kind::ConvTranspose => [1, 1],
        Kind::MaxPool | Kind::AvgPool => kernel,
    });
    if stride.contains(&0) {
        let span = option_span(options, "stride").unwrap_or(keyword);
        diags.push(
            Diagnostic::new(Code::Size, span, "a stride of 0 is not allowed").with_hint("strides are at least 1"),
        );
    }
    let spec = Spec {
        kind,
        size: kernel,
        stride,
        pad: written.pad.unwrap_or(Pad::Explicit {
            before: [0, 0],
            after: [0, 0],
        }),
        pad_span: option_span(options, "pad").unwrap_or(keyword),
        round: written.round,
        dilation: written.dilation.unwrap_or([1, 1]),
        groups: written.groups.map_or(1, |g| g.0),
        groups_span: written.groups.map_or(keyword, |g| g.1),
        bias: written.bias,
        output_pad: written.output_pad.unwrap_or([0, 0]),
        output_pad_span: option_span(options, "output_pad").unwrap_or(keyword),
    };
    // Padding limits are relative to the kernel: meaningless once it is 0. A
    // transposed convolution's padding crops its output instead (see `transposed`).
    match (spec.pad, kernel.contains(&0), kind) {
        (_, _, Kind::ConvTranspose) => check_transposed_padding(&spec, diags),
        (Pad::Explicit { before, after }, false, _) => check_padding_limits(&spec, before, after, diags),
        _ => {}
    }
    (diags.len() == errors_before).then_some(spec)
}

/// A window's options as written (`None` when not given or wrong), before defaults.
struct Written {
    kernel: Option<[usize; 2]>,
    stride: Option<[usize; 2]>,
    pad: Option<Pad>,
    round: Option<Rounding>,
    dilation: Option<[usize; 2]>,
    groups: Option<(usize, Span)>,
    bias: bool,
    output_pad: Option<[usize; 2]>,
    /// Each option's word, where it was first given.
    seen: Vec<(&'static str, Span)>,
}

/// Reads the options in order (a pooling layer's size after its keyword first):
/// each at most once, each one that the kind of window takes, each value in range.
fn read_options(
    kind: Kind,
    pool_kernel: Option<&ast::Spanned<Vec<u64>>>,
    options: &[ast::WindowOption],
    diags: &mut Diagnostics,
) -> Written {
    let mut written = Written {
        kernel: pool_kernel.and_then(|k| pair(k, "kernel", diags)),
        stride: None,
        pad: None,
        round: None,
        dilation: None,
        groups: None,
        bias: true,
        output_pad: None,
        seen: Vec::new(),
    };
    for option in options {
        let word = option_word(&option.kind);
        if let Some(&(_, first)) = written.seen.iter().find(|(w, _)| *w == word) {
            diags.push(
                Diagnostic::new(Code::Repeated, option.span, format!("`{word}` is given twice"))
                    .with_secondary(first, "first given here")
                    .with_hint(format!(
                        "each option of a {} layer may appear at most once",
                        kind.word()
                    )),
            );
            continue;
        }
        written.seen.push((word, option.span));
        match not_allowed(kind, option, word) {
            Some(d) => diags.push(d),
            None => read_option(option, &mut written, diags),
        }
    }
    written
}

/// The error for an option this kind of window does not take: a pooling size
/// written as `kernel`, `round` on convtranspose, `output_pad` elsewhere, `round
/// ceil` on conv, and the weights' options (`dilation`, `groups`, `bias`) on pooling.
fn not_allowed(kind: Kind, option: &ast::WindowOption, word: &str) -> Option<Diagnostic> {
    let d = match &option.kind {
        WindowOptionKind::Size(k) if !kind.has_weights() => Diagnostic::new(
            Code::NotAllowed,
            option.span,
            format!("{} takes its window size right after the keyword", kind.word()),
        )
        .with_hint(format!(
            "write `{} {}` and remove `kernel {}`",
            kind.word(),
            size_text(&k.value),
            size_text(&k.value)
        )),
        WindowOptionKind::Round(_) if kind == Kind::ConvTranspose => Diagnostic::new(
            Code::NotAllowed,
            option.span,
            "`round` is not an option of convtranspose",
        )
        .with_hint("a transposed convolution's output size is always whole; `output_pad` adds rows and columns"),
        WindowOptionKind::OutputPad(o) if kind != Kind::ConvTranspose => Diagnostic::new(
            Code::NotAllowed,
            option.span,
            "`output_pad` is only for convtranspose layers",
        )
        .with_hint(format!("remove `output_pad {}`", size_text(&o.value))),
        WindowOptionKind::Round(Rounding::Ceil) if kind == Kind::Conv => {
            Diagnostic::new(Code::NotAllowed, option.span, "`round ceil` is only for pooling layers")
                .with_hint("a conv layer may use `round floor`, or padding that makes the division exact")
        }
        WindowOptionKind::Dilation(_) | WindowOptionKind::Groups(_) | WindowOptionKind::BiasOff
            if !kind.has_weights() =>
        {
            let text = match &option.kind {
                WindowOptionKind::Dilation(d) => format!("dilation {}", size_text(&d.value)),
                WindowOptionKind::Groups(g) => format!("groups {}", g.value),
                _ => "bias off".to_string(),
            };
            Diagnostic::new(
                Code::NotAllowed,
                option.span,
                format!("`{word}` is only for conv layers"),
            )
            .with_hint(format!(
                "{} layers have no {}; remove `{text}`",
                kind.word(),
                match word {
                    "dilation" => "dilation",
                    "groups" => "channel groups",
                    _ => "parameters",
                }
            ))
        }
        WindowOptionKind::Size(_)
        | WindowOptionKind::Stride(_)
        | WindowOptionKind::Pad(_)
        | WindowOptionKind::Round(_)
        | WindowOptionKind::OutputPad(_)
        | WindowOptionKind::Dilation(_)
        | WindowOptionKind::Groups(_)
        | WindowOptionKind::BiasOff => return None,
    };
    Some(d)
}

/// Records the value of an option the window takes: sizes as pairs, a dilation
/// and groups of at least 1 (and groups not absurdly many).
fn read_option(option: &ast::WindowOption, written: &mut Written, diags: &mut Diagnostics) {
    match &option.kind {
        WindowOptionKind::Size(k) => written.kernel = pair(k, "kernel", diags),
        WindowOptionKind::Stride(s) => written.stride = pair(s, "stride", diags),
        WindowOptionKind::Pad(p) => written.pad = lower_pad(p, option.span, diags),
        WindowOptionKind::OutputPad(o) => written.output_pad = pair(o, "output_pad", diags),
        WindowOptionKind::Round(r) => written.round = Some(*r),
        WindowOptionKind::Dilation(d) => {
            written.dilation = pair(d, "dilation", diags);
            if written.dilation.is_some_and(|d| d.contains(&0)) {
                diags.push(
                    Diagnostic::new(Code::Size, option.span, "a dilation of 0 is not allowed")
                        .with_hint("dilation is at least 1; 1 (the default) is a plain convolution"),
                );
            }
        }
        WindowOptionKind::Groups(g) => {
            if g.value == 0 {
                diags.push(
                    Diagnostic::new(Code::Size, option.span, "groups 0 is not allowed").with_hint(
                        "groups is at least 1; 1 (the default) connects every input channel to every filter",
                    ),
                );
            } else if g.value as u128 > super::MAX_ELEMENTS {
                diags.push(Diagnostic::new(
                    Code::Size,
                    option.span,
                    format!("groups {} is too large", g.value),
                ));
            } else {
                written.groups = Some((g.value as usize, option.span));
            }
        }
        WindowOptionKind::BiasOff => written.bias = false,
    }
}

fn option_word(kind: &WindowOptionKind) -> &'static str {
    match kind {
        WindowOptionKind::Size(_) => "kernel",
        WindowOptionKind::Stride(_) => "stride",
        WindowOptionKind::Pad(_) => "pad",
        WindowOptionKind::Round(_) => "round",
        WindowOptionKind::Dilation(_) => "dilation",
        WindowOptionKind::Groups(_) => "groups",
        WindowOptionKind::BiasOff => "bias",
        WindowOptionKind::OutputPad(_) => "output_pad",
    }
}

fn check_padding_limits(spec: &Spec, before: [usize; 2], after: [usize; 2], diags: &mut Diagnostics) {
    for axis in 0..2 {
        let k = spec.size[axis];
        let span = spec.span()[axis];
        for p in [before[axis], after[axis]] {
            let error = match spec.kind {
                Kind::Conv if p >= span && span != k => Diagnostic::new(
                    Code::Padding,
                    spec.pad_span,
                    format!(
                        "padding {p} is not smaller than the window's span {span} (kernel {k} with dilation {})",
                        spec.dilation[axis]
                    ),
                )
                .with_hint("padding must be less than the dilated window on every side; more would only add zeros"),
                // Without dilation the span is the kernel: the plain message.
                Kind::Conv if p >= span => Diagnostic::new(
                    Code::Padding,
                    spec.pad_span,
                    format!("padding {p} is not smaller than the kernel size {k}"),
                )
                .with_hint("padding must be less than the kernel on every side; more would only add zeros"),
                Kind::MaxPool | Kind::AvgPool if p > k / 2 => Diagnostic::new(
                    Code::Padding,
                    spec.pad_span,
                    format!("pooling padding {p} is more than half the window {k}"),
                )
                .with_hint(format!(
                    "pooling padding must be at most {} on each side (as in PyTorch)",
                    k / 2
                )),
                _ => continue,
            };
            diags.push(error);
            return;
        }
    }
}

/// v3 convtranspose: padding symmetric per axis (as PyTorch's `padding`), and
/// `output_pad` smaller than the stride or the dilation of its axis.
fn check_transposed_padding(spec: &Spec, diags: &mut Diagnostics) {
    match spec.pad {
        Pad::Same => diags.push(
            Diagnostic::new(
                Code::Padding,
                spec.pad_span,
                "`pad same` is not defined for convtranspose",
            )
            .with_hint("write the padding removed from each side of the output: `pad P` or `pad PHxPW`"),
        ),
        Pad::Explicit { before, after } if before != after => diags.push(
            Diagnostic::new(
                Code::Padding,
                spec.pad_span,
                "convtranspose takes symmetric padding only",
            )
            .with_hint("write `pad P` or `pad PHxPW` (the same on both sides of an axis, as PyTorch's `padding`)"),
        ),
        Pad::Explicit { .. } => {}
    }
    let pad = match spec.pad {
        Pad::Explicit { before, .. } => before,
        Pad::Same => [0, 0],
    };
    for (axis, p) in pad.into_iter().enumerate() {
        let (o, s, d) = (spec.output_pad[axis], spec.stride[axis], spec.dilation[axis]);
        // The kernels compute the layer as the data gradient of a convolution, which
        // needs the extra rows within one stride of the padding.
        if o < s.max(d) && o >= s + p {
            diags.push(
                Diagnostic::new(
                    Code::Padding,
                    spec.output_pad_span,
                    format!(
                        "output_pad {o} is not supported with stride {s} and pad {p}: cnnc needs output_pad - pad below the stride"
                    ),
                )
                .with_hint("use a larger stride or padding, or a smaller output_pad"),
            );
            return;
        }
        if o >= s.max(d) {
            diags.push(
                Diagnostic::new(
                    Code::Padding,
                    spec.output_pad_span,
                    format!("output_pad {o} is not smaller than the stride {s} or the dilation {d}"),
                )
                .with_hint(format!(
                    "output_pad adds at most {} rows or columns here; it picks among the output sizes a stride leaves open",
                    s.max(d) - 1
                )),
            );
            return;
        }
    }
}

/// v3 convtranspose on an `h` x `w` input: the padding per axis and the output
/// size, `(in - 1)·S - 2P + D·(K - 1) + O + 1`, which must be at least 1.
pub fn transposed(
    name: &str,
    spec: &Spec,
    h: usize,
    w: usize,
    span: Span,
    diags: &mut Diagnostics,
) -> Option<([usize; 2], [usize; 2])> {
    let Pad::Explicit { before: pad, .. } = spec.pad else {
        return None;
    };
    let input = [h, w];
    let mut out = [0; 2];
    for axis in 0..2 {
        let (i, s, p, o) = (input[axis], spec.stride[axis], pad[axis], spec.output_pad[axis]);
        let full = (i - 1) as u128 * s as u128 + spec.span()[axis] as u128 + o as u128;
        if full <= 2 * p as u128 {
            diags.push(
                Diagnostic::new(
                    Code::WindowArithmetic,
                    span,
                    format!(
                        "{name}: ({i} - 1)·{s} - 2·{p} + {} + {o} = {} leaves no output",
                        spec.span()[axis],
                        full as i128 - 2 * p as i128
                    ),
                )
                .with_hint(format!(
                    "the padding removes {p} from each side of a {full}-wide output; use `pad {}` or less",
                    (full - 1) / 2
                )),
            );
            return None;
        }
        out[axis] = usize::try_from(full - 2 * p as u128).ok()?;
    }
    Some((pad, out))
}

/// The concrete window and the output height and width for an `h` x `w` input.
/// When the division is not exact, the error shows the arithmetic and names the
/// padding that would make it exact.
pub fn resolve(
    name: &str,
    spec: &Spec,
    h: usize,
    w: usize,
    span: Span,
    diags: &mut Diagnostics,
) -> Option<(ir::Window, [usize; 2])> {
    let input = [h, w];
    let (before, after) = match spec.pad {
        Pad::Explicit { before, after } => (before, after),
        Pad::Same => {
            let span = spec.span();
            let (t, b) = same_padding(h, span[0], spec.stride[0]);
            let (l, r) = same_padding(w, span[1], spec.stride[1]);
            let (before, after) = ([t, l], [b, r]);
            let errors = diags.len();
            check_padding_limits(spec, before, after, diags);
            if diags.len() > errors {
                return None;
            }
            (before, after)
        }
    };
    let cells = spec.span();
    let axes: [Axis; 2] = std::array::from_fn(|i| Axis {
        input: input[i],
        kernel: cells[i],
        stride: spec.stride[i],
        pad_before: before[i],
        pad_after: after[i],
    });
    // `pad same` makes ceil(in / S) outputs whatever `round` says: its padding covers
    // the last window exactly, or, when the stride is larger than the kernel, the
    // windows end before the input does and the cells after the last one are unread
    // (as in TensorFlow's "SAME"), which is the floor of the division.
    let round = match spec.pad {
        Pad::Same => Some(Rounding::Floor),
        Pad::Explicit { .. } => spec.round,
    };
    let results = axes.map(|a| a.output(round));
    if let [Ok(oh), Ok(ow)] = results {
        let window = ir::Window {
            size: spec.size,
            stride: spec.stride,
            pad_before: before,
            pad_after: after,
            ceil: round == Some(Rounding::Ceil),
        };
        return Some((window, [oh, ow]));
    }
    diags.push(explain_failure(name, spec, &axes, &results, span));
    None
}

fn explain_failure(
    name: &str,
    spec: &Spec,
    axes: &[Axis; 2],
    results: &[Result<usize, AxisError>; 2],
    span: Span,
) -> Diagnostic {
    let words = ["height", "width"];
    let failing: Vec<usize> = (0..2).filter(|&i| results[i].is_err()).collect();
    // The same arithmetic on both axes is said once.
    let same = failing.len() == 2 && axes[0] == axes[1];
    let describe = |i: usize| -> String {
        let prefix = if same || failing.len() == 1 && axes[0] == axes[1] {
            String::new()
        } else {
            format!("{} ", words[i])
        };
        match &results[i] {
            Err(AxisError::KernelTooLarge { padded }) => format!(
                "{prefix}{} {} is larger than the padded input {padded} ({} + {} + {})",
                if spec.dilation[i] > 1 {
                    "the dilated window"
                } else {
                    "kernel"
                },
                axes[i].kernel,
                axes[i].input,
                axes[i].pad_before,
                axes[i].pad_after
            ),
            Err(AxisError::NotWhole { .. }) => format!("{prefix}{} is not a whole number", axes[i].explain()),
            Err(AxisError::CeilPastEnd) => {
                let a = &axes[i];
                let floor = a.output(Some(Rounding::Floor)).unwrap_or(0);
                format!(
                    "{prefix}{} rounds up to {}, but window {} would start at {}, past the input and its leading padding ({} + {})",
                    a.explain(),
                    floor + 1,
                    floor + 1,
                    floor * a.stride,
                    a.pad_before,
                    a.input
                )
            }
            Ok(_) => String::new(),
        }
    };
    let shown: Vec<usize> = if same { vec![0] } else { failing.clone() };
    let message = format!(
        "{name}: {}",
        shown.iter().map(|&i| describe(i)).collect::<Vec<_>>().join("; ")
    );
    let mut diag = Diagnostic::new(Code::WindowArithmetic, span, message);
    let all_not_whole = failing
        .iter()
        .all(|&i| matches!(results[i], Err(AxisError::NotWhole { .. })));
    let too_large = failing
        .iter()
        .any(|&i| matches!(results[i], Err(AxisError::KernelTooLarge { .. })));
    if all_not_whole {
        diag = diag.with_hint(fix_hint(spec, axes, &failing));
    } else if too_large {
        diag = diag.with_hint("use a smaller kernel, add padding, or remove an earlier downsampling layer");
    } else {
        diag = diag.with_hint(
            "PyTorch would silently drop that window; write `round floor` to drop it, or use less padding after the input",
        );
    }
    diag
}

/// `pad bottom 1 right 1 makes it 13x13; round floor drops the last row and column`.
fn fix_hint(spec: &Spec, axes: &[Axis; 2], failing: &[usize]) -> String {
    let mut before = [axes[0].pad_before, axes[1].pad_before];
    let mut after = [axes[0].pad_after, axes[1].pad_after];
    for &i in failing {
        let extra = axes[i].missing_padding();
        if extra.is_multiple_of(2) && before[i] == after[i] {
            before[i] += extra / 2;
            after[i] += extra / 2;
        } else {
            after[i] += extra;
        }
    }
    let fixed: [Axis; 2] = std::array::from_fn(|i| Axis {
        pad_before: before[i],
        pad_after: after[i],
        ..axes[i]
    });
    let mut parts = Vec::new();
    let span = spec.span();
    let limit_ok = (0..2).all(|i| match spec.kind {
        Kind::Conv => before[i] < span[i] && after[i] < span[i],
        _ => before[i] <= spec.size[i] / 2 && after[i] <= spec.size[i] / 2,
    });
    if limit_ok {
        if let (Ok(oh), Ok(ow)) = (fixed[0].output(None), fixed[1].output(None)) {
            parts.push(format!("`{}` makes it {oh}x{ow}", pad_text(before, after)));
        }
    }
    let dropped = match failing {
        [0] => "the last row",
        [1] => "the last column",
        _ => "the last row and column",
    };
    parts.push(format!("`round floor` drops {dropped}"));
    if spec.kind != Kind::Conv {
        parts.push("`round ceil` keeps a partial window".to_string());
    }
    parts.join("; ")
}

/// The shortest way to write a padding: `pad 1`, `pad 1x2` or `pad top 1 right 2`.
fn pad_text(before: [usize; 2], after: [usize; 2]) -> String {
    if before == after {
        if before[0] == before[1] {
            return format!("pad {}", before[0]);
        }
        return format!("pad {}x{}", before[0], before[1]);
    }
    let sides = [
        ("top", before[0]),
        ("bottom", after[0]),
        ("left", before[1]),
        ("right", after[1]),
    ];
    let text: Vec<String> = sides
        .iter()
        .filter(|(_, v)| *v > 0)
        .map(|(s, v)| format!("{s} {v}"))
        .collect();
    format!("pad {}", text.join(" "))
}

fn option_span(options: &[ast::WindowOption], word: &str) -> Option<Span> {
    options.iter().find_map(|o| {
        let matches = matches!(
            (&o.kind, word),
            (WindowOptionKind::Size(_), "kernel")
                | (WindowOptionKind::Stride(_), "stride")
                | (WindowOptionKind::Pad(_), "pad")
                | (WindowOptionKind::Round(_), "round")
                | (WindowOptionKind::Dilation(_), "dilation")
                | (WindowOptionKind::Groups(_), "groups")
                | (WindowOptionKind::BiasOff, "bias")
        );
        matches.then_some(o.span)
    })
}

/// `3` means 3x3; `3x5` is height 3, width 5.
fn pair(size: &ast::Spanned<Vec<u64>>, what: &str, diags: &mut Diagnostics) -> Option<[usize; 2]> {
    let v = &size.value;
    let (a, b) = match v.as_slice() {
        [a] => (*a, *a),
        [a, b] => (*a, *b),
        _ => {
            diags.push(
                Diagnostic::new(
                    Code::Size,
                    size.span,
                    format!("a {what} has 1 or 2 dimensions, not {}", v.len()),
                )
                .with_hint(format!("write `{what} K` or `{what} KHxKW`")),
            );
            return None;
        }
    };
    let limit = 1u64 << 20;
    if a > limit || b > limit {
        diags.push(
            Diagnostic::new(
                Code::Size,
                size.span,
                format!("a {what} of {} is too large", size_text(v)),
            )
            .with_hint(format!("a {what} is at most {limit} on each axis")),
        );
        return None;
    }
    Some([a as usize, b as usize])
}

fn size_text(v: &[u64]) -> String {
    v.iter().map(u64::to_string).collect::<Vec<_>>().join("x")
}

fn lower_pad(p: &Padding, span: Span, diags: &mut Diagnostics) -> Option<Pad> {
    Some(match p {
        Padding::Same => Pad::Same,
        Padding::Valid => Pad::Explicit {
            before: [0, 0],
            after: [0, 0],
        },
        Padding::Size(s) => {
            let [ph, pw] = pair(s, "pad", diags)?;
            Pad::Explicit {
                before: [ph, pw],
                after: [ph, pw],
            }
        }
        Padding::Sides(sides) => {
            let mut before = [0, 0];
            let mut after = [0, 0];
            let mut seen = Vec::new();
            for (side, amount) in sides {
                if seen.contains(side) {
                    diags.push(
                        Diagnostic::new(
                            Code::Repeated,
                            amount.span.to(span),
                            format!("`{}` is given twice in this padding", side_word(*side)),
                        )
                        .with_hint("name each side at most once"),
                    );
                    return None;
                }
                seen.push(*side);
                if amount.value > 1 << 20 {
                    diags.push(
                        Diagnostic::new(
                            Code::Size,
                            amount.span,
                            format!("a padding of {} is too large", amount.value),
                        )
                        .with_hint("padding must be smaller than the kernel size"),
                    );
                    return None;
                }
                let v = amount.value as usize;
                match side {
                    Side::Top => before[0] = v,
                    Side::Bottom => after[0] = v,
                    Side::Left => before[1] = v,
                    Side::Right => after[1] = v,
                }
            }
            Pad::Explicit { before, after }
        }
    })
}

fn side_word(side: Side) -> &'static str {
    match side {
        Side::Top => "top",
        Side::Bottom => "bottom",
        Side::Left => "left",
        Side::Right => "right",
    }
}

#[cfg(test)]
mod tests {
    fn output(src: &str) -> Result<crate::ir::Shape, String> {
        crate::compile(src).map(|m| m[0].output()).map_err(|d| d.to_string())
    }

    #[test]
    fn pad_same_is_ceil_of_input_over_stride_even_when_the_stride_exceeds_the_kernel() {
        // 6 wide, kernel 1, stride 4: windows at 0 and 4, ceil(6 / 4) = 2 outputs, no
        // padding; cell 5 is never read (TensorFlow's "SAME").
        let src = "model M { input 1x6x6 conv 1 kernel 1 stride 4 pad same }";
        assert_eq!(output(src), Ok(crate::ir::Shape::Image { c: 1, h: 2, w: 2 }));
        let src = "model M { input 2x7x5 maxpool 2 stride 3 pad same }";
        assert_eq!(output(src), Ok(crate::ir::Shape::Image { c: 2, h: 3, w: 2 }));
        let src = "model M { input 2x7x5 avgpool 2 stride 3 pad same round ceil }";
        assert_eq!(output(src), Ok(crate::ir::Shape::Image { c: 2, h: 3, w: 2 }));
    }
}
