//! `rt::augment` (LANGUAGE.md `augment`): flips with probability 1/2, `crop P` as
//! torchvision's RandomCrop(size, padding=P), draws from (seed, epoch, index) only.

use cnnc::ir::Augment;
use cnnc::rt::augment::{augment_batch, augment_sample, choice, Choice};

const SHAPE: (usize, usize, usize) = (2, 5, 7);

/// A sample whose every value is different (and none is 0).
fn sample() -> Vec<f32> {
    (0..SHAPE.0 * SHAPE.1 * SHAPE.2).map(|i| i as f32 + 1.0).collect()
}

fn run(augs: &[Augment], seed: u64, epoch: u64, index: u64, x: &[f32]) -> Vec<f32> {
    let mut out = vec![f32::NAN; x.len()];
    augment_sample(augs, SHAPE, seed, epoch, index, x, &mut out);
    out
}

/// One transform done the plain way, as its definition says: mirror, or pad with
/// zeros and take the window at the drawn corner.
fn reference_step(aug: Augment, position: usize, seed: u64, epoch: u64, index: u64, x: &[f32]) -> Vec<f32> {
    let (c, h, w) = SHAPE;
    let at = |x: &[f32], ch: usize, i: usize, j: usize| x[(ch * h + i) * w + j];
    let mut out = vec![0.0; x.len()];
    match (aug, choice(aug, position, seed, epoch, index)) {
        (_, Choice::Flip(false)) => out.copy_from_slice(x),
        (Augment::FlipHorizontal, Choice::Flip(true)) => {
            for ch in 0..c {
                for i in 0..h {
                    for j in 0..w {
                        out[(ch * h + i) * w + j] = at(x, ch, i, w - 1 - j);
                    }
                }
            }
        }
        (Augment::FlipVertical, Choice::Flip(true)) => {
            for ch in 0..c {
                for i in 0..h {
                    for j in 0..w {
                        out[(ch * h + i) * w + j] = at(x, ch, h - 1 - i, j);
                    }
                }
            }
        }
        (Augment::Crop(p), Choice::Crop { top, left }) => {
            assert!(top <= 2 * p && left <= 2 * p);
            let (ph, pw) = (h + 2 * p, w + 2 * p);
            let mut padded = vec![0.0; c * ph * pw];
            for ch in 0..c {
                for i in 0..h {
                    for j in 0..w {
                        padded[(ch * ph + i + p) * pw + j + p] = at(x, ch, i, j);
                    }
                }
            }
            for ch in 0..c {
                for i in 0..h {
                    for j in 0..w {
                        out[(ch * h + i) * w + j] = padded[(ch * ph + i + top) * pw + j + left];
                    }
                }
            }
        }
        (aug, choice) => panic!("{aug:?} drew {choice:?}"),
    }
    out
}

#[test]
fn draws_depend_only_on_seed_epoch_and_index() {
    let x = sample();
    let augs = [Augment::FlipHorizontal, Augment::Crop(2), Augment::FlipVertical];
    for index in 0..50 {
        assert_eq!(run(&augs, 7, 3, index, &x), run(&augs, 7, 3, index, &x));
    }
    let differ = |f: &dyn Fn(u64) -> (Vec<f32>, Vec<f32>)| (0..50).filter(|&i| f(i).0 != f(i).1).count();
    assert!(
        differ(&|i| (run(&augs, 7, 3, i, &x), run(&augs, 8, 3, i, &x))) > 25,
        "the seed matters"
    );
    assert!(
        differ(&|i| (run(&augs, 7, 3, i, &x), run(&augs, 7, 4, i, &x))) > 25,
        "the epoch matters"
    );
    assert!(
        differ(&|i| (run(&augs, 7, 3, i, &x), run(&augs, 7, 3, i + 1, &x))) > 25,
        "the index matters"
    );

    // A batch gives each sample the draws of its index, in whatever order it comes.
    let indices = [9usize, 2, 40, 2, 17];
    let batch: Vec<f32> = indices.iter().flat_map(|_| x.clone()).collect();
    let mut out = vec![0.0; batch.len()];
    augment_batch(&augs, SHAPE, 7, 3, &indices, &batch, &mut out);
    for (k, &index) in indices.iter().enumerate() {
        assert_eq!(
            out[k * x.len()..(k + 1) * x.len()],
            run(&augs, 7, 3, index as u64, &x)[..]
        );
    }
}

#[test]
fn flip_twice_and_crop_zero_are_the_identity() {
    let x = sample();
    let mut flipped = 0;
    for index in 0..40 {
        for aug in [Augment::FlipHorizontal, Augment::FlipVertical] {
            let once = run(&[aug], 1, 0, index, &x);
            flipped += usize::from(once != x);
            assert_eq!(run(&[aug], 1, 0, index, &once), x, "{aug:?} twice, sample {index}");
        }
        assert_eq!(run(&[Augment::Crop(0)], 1, 0, index, &x), x);
        assert_eq!(run(&[], 1, 0, index, &x), x);
    }
    assert!(flipped > 20, "flips happen ({flipped} of 80)");
}

#[test]
fn transforms_match_pad_and_window_references() {
    let x = sample();
    let chains: &[&[Augment]] = &[
        &[Augment::Crop(1)],
        &[Augment::Crop(3)],
        // A padding wider than the sample: some windows are all zeros.
        &[Augment::Crop(8)],
        &[Augment::FlipHorizontal],
        &[Augment::FlipVertical],
        &[Augment::FlipHorizontal, Augment::Crop(2)],
        &[Augment::Crop(2), Augment::FlipHorizontal, Augment::FlipVertical],
        &[
            Augment::Crop(1),
            Augment::Crop(2),
            Augment::FlipVertical,
            Augment::Crop(1),
        ],
    ];
    for augs in chains {
        for index in 0..60 {
            let mut expected = x.clone();
            for (position, &aug) in augs.iter().enumerate() {
                expected = reference_step(aug, position, 5, 2, index, &expected);
            }
            assert_eq!(run(augs, 5, 2, index, &x), expected, "{augs:?}, sample {index}");
        }
    }
}

#[test]
fn choices_are_roughly_even() {
    let n = 20_000u64;
    let flips = (0..n)
        .filter(|&i| choice(Augment::FlipHorizontal, 0, 11, 0, i) == Choice::Flip(true))
        .count();
    let share = flips as f64 / n as f64;
    assert!((0.48..0.52).contains(&share), "flip share {share}");
    // crop 2: corners 0..=4 on each axis, 25 pairs, each about n / 25.
    let mut pairs = [[0usize; 5]; 5];
    for i in 0..n {
        match choice(Augment::Crop(2), 1, 11, 3, i) {
            Choice::Crop { top, left } => pairs[top][left] += 1,
            other => panic!("{other:?}"),
        }
    }
    let expected = n as f64 / 25.0;
    for row in pairs {
        for count in row {
            assert!(
                (count as f64 - expected).abs() < 0.15 * expected,
                "{pairs:?}: each corner about {expected}"
            );
        }
    }
    // Two transforms of one sample draw apart.
    let same = (0..n)
        .filter(|&i| choice(Augment::FlipHorizontal, 0, 11, 0, i) == choice(Augment::FlipHorizontal, 1, 11, 0, i))
        .count();
    assert!((0.48..0.52).contains(&(same as f64 / n as f64)), "{same}");
}
