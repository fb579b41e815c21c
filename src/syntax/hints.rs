//! Hints for the words a PyTorch or Keras user types: `padding` for `pad`, `Linear`
//! for `dense`, `learning_rate` for `lr`, a kernel size without `kernel`,
//! `ConvTranspose2d` for `convtranspose`, `cat` for `concat`.
//! They come before "did you mean", which would otherwise offer a different word
//! (`conv` for `convtranspose`).

/// What a foreign word is in .cnn.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Ours {
    /// Our keyword (or form) for it, and an example.
    Word(&'static str, &'static str),
    /// No word: the value is inferred or written another way; the note says how.
    Inferred(&'static str),
}

/// PyTorch and Keras words (lower case; matched case-insensitively) and what they are
/// in .cnn. The one table of these hints.
const FOREIGN: &[(&str, Ours)] = &[
    // Layers (PyTorch `nn.X` and Keras `layers.X` class names).
    (
        "conv2d",
        Ours::Word("conv", "`conv 16 kernel 3 pad 1` is `nn.Conv2d(C, 16, 3, padding=1)`"),
    ),
    ("convolution2d", Ours::Word("conv", "`conv 16 kernel 3`")),
    (
        "linear",
        Ours::Word("dense", "`dense 10` is `nn.Linear(N, 10)`; the input size is inferred"),
    ),
    ("batchnorm2d", Ours::Word("batchnorm", "`batchnorm` after a conv layer")),
    (
        "batchnorm1d",
        Ours::Word("batchnorm", "`batchnorm` after a dense layer"),
    ),
    ("batchnormalization", Ours::Word("batchnorm", "`batchnorm`")),
    ("batch_norm", Ours::Word("batchnorm", "`batchnorm`")),
    ("maxpool2d", Ours::Word("maxpool", "`maxpool 2` is `nn.MaxPool2d(2)`")),
    (
        "maxpooling2d",
        Ours::Word("maxpool", "`maxpool 2` is `MaxPooling2D(2)`"),
    ),
    ("max_pool2d", Ours::Word("maxpool", "`maxpool 2`")),
    ("avgpool2d", Ours::Word("avgpool", "`avgpool 2` is `nn.AvgPool2d(2)`")),
    (
        "averagepooling2d",
        Ours::Word("avgpool", "`avgpool 2` is `AveragePooling2D(2)`"),
    ),
    ("avg_pool2d", Ours::Word("avgpool", "`avgpool 2`")),
    (
        "adaptiveavgpool2d",
        Ours::Word("avgpool global", "`avgpool global` is `nn.AdaptiveAvgPool2d(1)`"),
    ),
    (
        "globalaveragepooling2d",
        Ours::Word("avgpool global", "`avgpool global`, then `flatten`"),
    ),
    ("dropout2d", Ours::Word("dropout", "`dropout 0.5`")),
    ("leakyrelu", Ours::Word("leaky_relu", "`leaky_relu 0.01`")),
    ("swish", Ours::Word("silu", "`silu`")),
    (
        "logsoftmax",
        Ours::Word("softmax", "end with `softmax` and use `loss cross_entropy`"),
    ),
    // Options.
    ("padding", Ours::Word("pad", "`conv 16 kernel 3 pad 1` (or `pad same`)")),
    ("kernel_size", Ours::Word("kernel", "`conv 16 kernel 3`")),
    ("strides", Ours::Word("stride", "`stride 2`")),
    ("dilation_rate", Ours::Word("dilation", "`dilation 2`")),
    (
        "use_bias",
        Ours::Word("bias off", "write `bias off` to leave the bias out"),
    ),
    ("epsilon", Ours::Word("eps", "`batchnorm eps 1e-3`")),
    (
        "out_channels",
        Ours::Inferred("the number right after `conv` is the output channels: `conv 16 kernel 3`"),
    ),
    (
        "filters",
        Ours::Inferred("the number right after `conv` is the filter count: `conv 16 kernel 3`"),
    ),
    (
        "in_channels",
        Ours::Inferred("the input channels are inferred from the previous layer; leave them out"),
    ),
    (
        "in_features",
        Ours::Inferred("the input size is inferred from the previous layer; leave it out"),
    ),
    (
        "num_features",
        Ours::Inferred("`batchnorm` infers its channels from the previous layer"),
    ),
    (
        "out_features",
        Ours::Inferred("the number right after `dense` is the output size: `dense 10`"),
    ),
    (
        "units",
        Ours::Inferred("the number right after `dense` is the output size: `dense 10`"),
    ),
    // Training.
    ("learning_rate", Ours::Word("lr", "`optimizer adam lr 0.001`")),
    ("batch_size", Ours::Word("batch", "`batch 64`")),
    ("num_epochs", Ours::Word("epochs", "`epochs 10`")),
    ("max_epochs", Ours::Word("epochs", "`epochs 10`")),
    (
        "betas",
        Ours::Word("beta1", "`optimizer adam lr 0.001 beta1 0.9 beta2 0.999`"),
    ),
    ("validation_split", Ours::Word("validation", "`validation 0.1`")),
    ("manual_seed", Ours::Word("seed", "`seed 42`")),
    ("crossentropyloss", Ours::Word("cross_entropy", "`loss cross_entropy`")),
    (
        "categorical_crossentropy",
        Ours::Word("cross_entropy", "`loss cross_entropy`"),
    ),
    (
        "sparse_categorical_crossentropy",
        Ours::Word("cross_entropy", "`loss cross_entropy`"),
    ),
    (
        "nllloss",
        Ours::Word("cross_entropy", "`loss cross_entropy` after `softmax`"),
    ),
    ("mseloss", Ours::Word("mse", "`loss mse`")),
    ("mean_squared_error", Ours::Word("mse", "`loss mse`")),
    (
        "bceloss",
        Ours::Word("binary_cross_entropy", "`loss binary_cross_entropy` after `sigmoid`"),
    ),
    (
        "binary_crossentropy",
        Ours::Word("binary_cross_entropy", "`loss binary_cross_entropy`"),
    ),
    ("steplr", Ours::Word("schedule step", "`schedule step 10 gamma 0.1`")),
    (
        "exponentiallr",
        Ours::Word("schedule exponential", "`schedule exponential 0.95`"),
    ),
    ("cosineannealinglr", Ours::Word("schedule cosine", "`schedule cosine`")),
    (
        "randomhorizontalflip",
        Ours::Word("augment flip horizontal", "`augment flip horizontal`"),
    ),
    ("randomcrop", Ours::Word("augment crop", "`augment crop 4`")),
    (
        "label_smoothing",
        Ours::Word("smoothing", "`loss cross_entropy smoothing 0.1`"),
    ),
    // Language version 3.
    (
        "convtranspose2d",
        Ours::Word(
            "convtranspose",
            "`convtranspose 16 kernel 2 stride 2` is `nn.ConvTranspose2d(C, 16, 2, stride=2)`",
        ),
    ),
    (
        "conv2dtranspose",
        Ours::Word("convtranspose", "`convtranspose 16 kernel 2 stride 2`"),
    ),
    (
        "upsampling2d",
        Ours::Word("upsample", "`upsample 2` is `UpSampling2D(2)`"),
    ),
    (
        "interpolate",
        Ours::Word(
            "upsample",
            "`upsample 2 bilinear` is `F.interpolate(x, scale_factor=2, mode='bilinear')`",
        ),
    ),
    (
        "concatenate",
        Ours::Word("concat", "`concat e1` is `torch.cat([x, e1], dim=1)`"),
    ),
    (
        "cat",
        Ours::Word("concat", "`concat e1` is `torch.cat([x, e1], dim=1)`"),
    ),
    (
        "adaptivemaxpool2d",
        Ours::Word("maxpool global", "`maxpool global` is `nn.AdaptiveMaxPool2d(1)`"),
    ),
    (
        "globalmaxpooling2d",
        Ours::Word("maxpool global", "`maxpool global`, then `flatten`"),
    ),
    (
        "earlystopping",
        Ours::Word(
            "early_stop",
            "`early_stop 5` with `validation 0.1` is Keras's `EarlyStopping(patience=5)`",
        ),
    ),
    (
        "linearlr",
        Ours::Word(
            "warmup",
            "`warmup 5 from 0.1` is `LinearLR(start_factor=0.1, total_iters=5)` before the schedule",
        ),
    ),
];

/// The hint for a word the grammar did not accept, when it is a PyTorch or Keras
/// spelling or one of our keywords in the wrong case.
pub(super) fn foreign_word(word: &str, keywords: &[&str]) -> Option<String> {
    let lower = word.to_ascii_lowercase();
    let found = crate::diag::shorten(word);
    if let Some((_, ours)) = FOREIGN.iter().find(|(w, _)| *w == lower) {
        return Some(match *ours {
            Ours::Word(ours, example) => format!("`{found}` is `{ours}` in .cnn: {example}"),
            Ours::Inferred(note) => format!("`{found}` is not written in .cnn; {note}"),
        });
    }
    let wanted = |k: &&str| *k == lower && *k != word;
    let keyword = keywords.iter().copied().find(wanted).map(str::to_string).or_else(|| {
        let mut ours = super::keywords::KEYWORDS
            .iter()
            .copied()
            .chain(crate::activation::words());
        ours.find(wanted).map(str::to_string)
    })?;
    Some(format!("keywords are lower case: `{keyword}`"))
}

/// The hint for a number where the grammar wanted a word, from the words before it:
/// `conv 16 3` (PyTorch's positional kernel size), `conv 3 16 kernel 3` (in and out
/// channels), `maxpool 2 2` (a positional stride), `dense 784 10` (in and out sizes).
pub(super) fn positional(source: &str, pos: usize, word: &str) -> Option<String> {
    if !word.starts_with(|c: char| c.is_ascii_digit()) {
        return None;
    }
    let mut before = source.get(..pos)?.split_whitespace().rev();
    let (count, keyword) = (before.next()?, before.next()?);
    if !count.bytes().all(|b| b.is_ascii_digit() || b == b'x') {
        return None;
    }
    let next = source
        .get(pos + word.len()..)
        .and_then(|rest| rest.split_whitespace().next())
        .unwrap_or("");
    let word = crate::diag::shorten(word);
    let count = crate::diag::shorten(count);
    match keyword {
        "conv" if next == "kernel" => Some(format!(
            "`conv` takes only the output channels (the input channels are inferred): `conv {word} kernel ...`"
        )),
        "conv" => Some(format!(
            "the kernel size follows the word `kernel`: `conv {count} kernel {word}`"
        )),
        "maxpool" | "avgpool" => Some(format!(
            "the stride follows the word `stride`: `{keyword} {count} stride {word}`"
        )),
        "dense" => Some(format!(
            "`dense` takes only the output size (the input size is inferred): `dense {word}`"
        )),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_table_is_lower_case_and_has_no_repeats() {
        for (i, (word, _)) in FOREIGN.iter().enumerate() {
            assert_eq!(*word, word.to_ascii_lowercase());
            assert!(!FOREIGN[..i].iter().any(|(w, _)| w == word), "{word} twice");
            // A foreign word is not one of ours (it would never reach the table).
            assert!(!super::super::keywords::is_keyword(word), "{word} is a keyword");
        }
    }

    #[test]
    fn pytorch_and_keras_words_map_to_ours() {
        let hint = |w: &str| foreign_word(w, &[]).unwrap_or_default();
        for (word, ours) in [
            ("padding", "`pad`"),
            ("Linear", "`dense`"),
            ("Conv2d", "`conv`"),
            ("BatchNorm2d", "`batchnorm`"),
            ("learning_rate", "`lr`"),
            ("kernel_size", "`kernel`"),
            ("out_channels", "after `conv`"),
            ("MaxPool2d", "`maxpool`"),
            ("AdaptiveAvgPool2d", "`avgpool global`"),
            ("ReLU", "lower case: `relu`"),
            ("Dropout", "lower case: `dropout`"),
            ("Dense", "lower case: `dense`"),
        ] {
            assert!(hint(word).contains(ours), "{word}: {}", hint(word));
        }
        assert!(hint("ReLU6").contains("lower case: `relu6`"), "{}", hint("ReLU6"));
        assert!(
            hint("label_smoothing").contains("smoothing 0.1"),
            "{}",
            hint("label_smoothing")
        );
        for (word, ours) in [
            ("ConvTranspose2d", "`convtranspose`"),
            ("UpSampling2D", "`upsample`"),
            ("cat", "`concat`"),
            ("AdaptiveMaxPool2d", "`maxpool global`"),
        ] {
            assert!(hint(word).contains(ours), "{word}: {}", hint(word));
        }
        assert!(
            hint("EarlyStopping").contains("`early_stop`"),
            "{}",
            hint("EarlyStopping")
        );
        assert_eq!(foreign_word("dropot", &["dropout"]), None);
        assert_eq!(foreign_word("relu", &["relu"]), None);
    }

    #[test]
    fn positional_numbers() {
        let at = |src: &str, word: &str| positional(src, src.rfind(word).unwrap(), word);
        assert!(at("conv 16 3 relu", "3").unwrap().contains("`conv 16 kernel 3`"));
        assert!(at("conv 3 16 kernel 3", "16").unwrap().contains("`conv 16 kernel ...`"));
        assert!(at("maxpool 2 2", "2").unwrap().contains("`maxpool 2 stride 2`"));
        assert!(at("dense 784 10", "10").unwrap().contains("`dense 10`"));
        assert_eq!(at("dropout 0.5 3", "3"), None);
        assert_eq!(positional("3", 0, "3"), None);
    }
}
