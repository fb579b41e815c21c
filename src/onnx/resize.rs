//! `Resize` and `Upsample` by whole factors as `upsample F [bilinear]`: the factors
//! from `scales` (an input, or an attribute before opset 9) or constant `sizes`,
//! and the coordinate and rounding modes that are PyTorch's `nearest` (each pixel
//! repeated F times, checked cell by cell on the actual sizes) or its `bilinear`
//! with `align_corners=False` (half-pixel coordinates).

use super::graph::Node;
use super::items::{image, item_name, pair, Context, LARGEST};
use super::layout::Item;
use crate::ir::Shape;

/// `Resize` (opset 10 on) and `Upsample` (opsets 7 to 9) by whole factors of the
/// height and width: `upsample F` for PyTorch's `nearest` (each pixel repeated),
/// `upsample F bilinear` for its `bilinear` with `align_corners=False`.
pub fn resize(ctx: &dyn Context, node: &Node, shape: &mut Shape) -> Result<Item, String> {
    let [c, h, w] = image(ctx, node, shape)?;
    let opset = ctx.opset();
    let factor = resize_factors(ctx, node, [c, h, w])?;
    let mode = node.string("mode", "nearest");
    // Before opset 11 the coordinates are `asymmetric`, nearest rounds down.
    let old = node.op == "Upsample" || opset < 11;
    let ctm = node.string("coordinate_transformation_mode", "half_pixel");
    let bilinear = match mode.as_str() {
        "nearest" if old => false,
        "nearest" => {
            let rounding = node.string("nearest_mode", "round_prefer_floor");
            for (len, f) in [(h, factor[0]), (w, factor[1])] {
                match nearest_repeats(&ctm, &rounding, len, f) {
                    Some(true) => {}
                    Some(false) => {
                        return Err(ctx.fail(
                            node,
                            &format!(
                                "nearest with `coordinate_transformation_mode` {ctm} and `nearest_mode` {rounding} \
                                 does not repeat each pixel {f} times (PyTorch's `nearest`, cnnc's `upsample`)"
                            ),
                        ))
                    }
                    None => {
                        return Err(ctx.fail(
                            node,
                            &format!(
                                "`coordinate_transformation_mode` {ctm} with `nearest_mode` {rounding} is not read \
                                 (asymmetric with floor, or half_pixel, is PyTorch's `nearest`)"
                            ),
                        ))
                    }
                }
            }
            false
        }
        "linear" | "bilinear" if old => {
            return Err(ctx.fail(
                node,
                "linear `mode` before opset 11 takes asymmetric coordinates, which is not PyTorch's bilinear \
                 (align_corners=False); export at opset 11 or later",
            ))
        }
        "linear" | "bilinear" if matches!(ctm.as_str(), "half_pixel" | "pytorch_half_pixel") => true,
        "linear" | "bilinear" => {
            return Err(ctx.fail(
                node,
                &format!(
                    "linear with `coordinate_transformation_mode` {ctm} is not read: `upsample F bilinear` is \
                     half_pixel (PyTorch's align_corners=False)"
                ),
            ))
        }
        other => {
            return Err(ctx.fail(
                node,
                &format!("`mode` {other} is not read: nearest and linear are (`upsample F [bilinear]`)"),
            ))
        }
    };
    let mut text = format!("upsample {}", pair(factor));
    if bilinear {
        text += " bilinear";
    }
    let (oh, ow) = (h as u128 * factor[0] as u128, w as u128 * factor[1] as u128);
    if oh > LARGEST || ow > LARGEST {
        return Err(ctx.fail(node, &format!("outputs {oh}x{ow}, more than cnnc reads")));
    }
    *shape = Shape::Image {
        c,
        h: oh as usize,
        w: ow as usize,
    };
    Ok(Item::layer(&text, item_name(ctx.graph(), node), Vec::new()))
}

/// The whole factors `[FH, FW]` of a `Resize` or `Upsample` on a CxHxW input, from
/// its `scales` (an input, or the attribute before opset 9) or its `sizes`.
fn resize_factors(ctx: &dyn Context, node: &Node, [c, h, w]: [usize; 3]) -> Result<[usize; 2], String> {
    let g = ctx.graph();
    let opset = ctx.opset();
    let input = |k: usize| {
        node.slots
            .get(k)
            .filter(|t| !t.is_empty())
            .map(|t| g.consts.get(t).ok_or(t))
            .transpose()
    };
    let not_constant = |t: &String| ctx.fail(node, &format!("input `{t}` must be a constant (an initializer)"));
    // `axes` (opset 18): the scales or sizes of those axes only.
    let axes: Vec<i64> = node
        .ints("axes")
        .iter()
        .map(|&a| if a < 0 { a + 4 } else { a })
        .collect();
    let full = |given: Vec<f64>, what: &str| -> Result<Vec<f64>, String> {
        if axes.is_empty() {
            return Ok(given);
        }
        let mut v = vec![1.0; 4];
        if axes.len() != given.len() || axes.iter().any(|a| !(0..4).contains(a)) {
            return Err(ctx.fail(node, &format!("`{what}` {given:?} does not fit `axes` {axes:?}")));
        }
        for (a, x) in axes.iter().zip(given) {
            v[*a as usize] = x;
        }
        Ok(v)
    };
    let (scales_at, sizes_at) = match (node.op.as_str(), opset) {
        ("Upsample", ..=8) => (None, None),
        ("Upsample", _) | (_, ..=10) => (Some(1), None),
        _ => (Some(2), Some(3)),
    };
    let scales: Vec<f64> = match scales_at {
        None => node.floats("scales").iter().map(|&v| f64::from(v)).collect(),
        Some(k) => match input(k).map_err(not_constant)? {
            Some(t) => t.floats.iter().map(|&v| f64::from(v)).collect(),
            None => Vec::new(),
        },
    };
    let whole = |v: f64| (v >= 1.0 && v <= (1 << 20) as f64 && v.fract() == 0.0).then_some(v as usize);
    if !scales.is_empty() {
        let s = full(scales, "scales")?;
        return match s.as_slice() {
            [n, ch, fh, fw] if *n == 1.0 && *ch == 1.0 => match (whole(*fh), whole(*fw)) {
                (Some(fh), Some(fw)) => Ok([fh, fw]),
                _ => Err(scales_error(ctx, node, &s)),
            },
            _ => Err(scales_error(ctx, node, &s)),
        };
    }
    let sizes = match sizes_at.map(input).transpose().map_err(not_constant)?.flatten() {
        Some(t) if !t.ints.is_empty() => full(t.ints.iter().map(|&v| v as f64).collect(), "sizes")?,
        _ => {
            return Err(ctx.fail(
                node,
                "has neither constant `scales` nor constant `sizes`; export it with a `scale_factor`",
            ))
        }
    };
    if node.string("keep_aspect_ratio_policy", "stretch") != "stretch" {
        return Err(ctx.fail(node, "`keep_aspect_ratio_policy` other than stretch is not read"));
    }
    let factor = |out: f64, len: usize| whole(out / len as f64).filter(|f| (f * len) as f64 == out);
    match sizes.as_slice() {
        [_, ch, oh, ow] if *ch == c as f64 || axes.len() == 2 => match (factor(*oh, h), factor(*ow, w)) {
            (Some(fh), Some(fw)) => Ok([fh, fw]),
            _ => Err(ctx.fail(
                node,
                &format!(
                    "`sizes` {sizes:?} are no whole multiples of the input's {h}x{w}; only whole factors are `upsample`"
                ),
            )),
        },
        _ => Err(ctx.fail(
            node,
            &format!("`sizes` {sizes:?} do not keep the {c} channels of the input"),
        )),
    }
}

fn scales_error(ctx: &dyn Context, node: &Node, scales: &[f64]) -> String {
    ctx.fail(
        node,
        &format!(
            "`scales` is {scales:?}; only whole factors from 1 on the height and width (and 1 on the batch and \
             the channels) are `upsample F`"
        ),
    )
}

/// Whether nearest-neighbour resizing by the whole factor `f` of an axis of `len`
/// cells, with these ONNX modes, reads input cell `o / f` for output cell `o` (as
/// PyTorch's `nearest` does); `None` for modes this does not know. Every cell is
/// checked up to 2^16 output cells; on longer axes the first 2^16 and the last
/// 2^15, where the modes that repeat a period (all but align_corners) can differ.
fn nearest_repeats(ctm: &str, rounding: &str, len: usize, f: usize) -> Option<bool> {
    const ALL: usize = 1 << 16;
    let out = len.saturating_mul(f);
    let scale = f as f64;
    let cells = (0..out.min(ALL)).chain(out.saturating_sub(ALL / 2).max(ALL)..out);
    for o in cells {
        let o_f = o as f64;
        let x = match ctm {
            "half_pixel" => (o_f + 0.5) / scale - 0.5,
            "pytorch_half_pixel" if out > 1 => (o_f + 0.5) / scale - 0.5,
            "pytorch_half_pixel" => 0.0,
            "asymmetric" => o_f / scale,
            "tf_half_pixel_for_nn" => (o_f + 0.5) / scale,
            "align_corners" if out > 1 => o_f * (len - 1) as f64 / (out - 1) as f64,
            "align_corners" => 0.0,
            _ => return None,
        };
        let i = match rounding {
            "round_prefer_floor" if x.fract() == 0.5 => x.floor(),
            "round_prefer_ceil" if x.fract() == 0.5 => x.ceil(),
            "round_prefer_floor" | "round_prefer_ceil" => x.round(),
            "floor" => x.floor(),
            "ceil" => x.ceil(),
            _ => return None,
        };
        let i = i.clamp(0.0, (len - 1) as f64) as usize;
        if i != o / f {
            return Some(false);
        }
    }
    Some(true)
}

#[cfg(test)]
mod tests {
    use super::nearest_repeats;

    /// ONNX Runtime 1.32's Resize (opset 13, nearest) on a 3x4 map by 2x2, 3x3 and
    /// 2x3: whether the output is each pixel repeated (numpy's `repeat` on both
    /// axes), for each coordinate mode and rounding.
    #[test]
    fn nearest_modes_repeat_pixels_as_onnx_runtime_does() {
        let runtime = [
            ("half_pixel", "round_prefer_floor", [true, true, true]),
            ("half_pixel", "round_prefer_ceil", [true, true, true]),
            ("half_pixel", "floor", [false, false, false]),
            ("half_pixel", "ceil", [false, false, false]),
            ("pytorch_half_pixel", "round_prefer_floor", [true, true, true]),
            ("pytorch_half_pixel", "round_prefer_ceil", [true, true, true]),
            ("pytorch_half_pixel", "floor", [false, false, false]),
            ("asymmetric", "round_prefer_floor", [true, false, false]),
            ("asymmetric", "round_prefer_ceil", [false, false, false]),
            ("asymmetric", "floor", [true, true, true]),
            ("asymmetric", "ceil", [false, false, false]),
            ("align_corners", "round_prefer_floor", [true, false, false]),
            ("align_corners", "round_prefer_ceil", [true, false, false]),
            ("align_corners", "floor", [false, false, false]),
            ("tf_half_pixel_for_nn", "round_prefer_floor", [false, false, false]),
            ("tf_half_pixel_for_nn", "floor", [true, true, true]),
        ];
        for (ctm, rounding, want) in runtime {
            for (k, (fh, fw)) in [(2, 2), (3, 3), (2, 3)].into_iter().enumerate() {
                let got = nearest_repeats(ctm, rounding, 3, fh) == Some(true)
                    && nearest_repeats(ctm, rounding, 4, fw) == Some(true);
                assert_eq!(got, want[k], "{ctm} {rounding} by {fh}x{fw}");
            }
        }
        assert_eq!(nearest_repeats("tf_crop_and_resize", "floor", 3, 2), None);
        assert_eq!(nearest_repeats("asymmetric", "nearest", 3, 2), None);
    }
}
