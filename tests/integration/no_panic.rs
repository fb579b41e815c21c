//! The parser and checker never panic, whatever the text: arbitrary strings, token
//! soups, and mutations of the example models. Models the checker accepts have
//! consistent shapes: each layer's input is the previous layer's output.

use cnnc::ir::{Op, Shape};
use proptest::prelude::*;
use std::sync::LazyLock;

use crate::common;
use common::EXAMPLE_MODELS as EXAMPLES;

/// Keywords (`cnnc::syntax::KEYWORDS`) and [`EXTRA_TOKENS`].
static TOKENS: LazyLock<Vec<&'static str>> =
    LazyLock::new(|| cnnc::syntax::KEYWORDS.iter().chain(EXTRA_TOKENS).copied().collect());

/// What the mutations insert besides the language's keywords: edge-case numbers,
/// punctuation and junk.
const EXTRA_TOKENS: &[&str] = &[
    "{",
    "}",
    ":",
    "0",
    "1",
    "2",
    "3",
    "7",
    "1x1",
    "3x5",
    "0x0",
    "1x28x28",
    "4294967296",
    "18446744073709551615",
    "99999999999999999999",
    "2147483648",
    "1048576",
    "1048577",
    "100000x100000x100000",
    "0.5",
    "-1",
    "-0.5",
    "1e-3",
    "1e999",
    "1.",
    ".5",
    "x",
    "//",
    "/*",
    "*/",
    "é",
    "\u{0}",
    "\n",
];

/// Version 2 texts for the mutations: residual blocks (nested, with and without a
/// shortcut), batchnorm, dilation, groups, `bias off`, silu, gelu, normalize, augment.
const V2_EXAMPLES: &[&str] = &[
    "model ResNet {
        input 3x16x16 normalize mean 0.5 0.5 0.5 std 0.25 0.25 0.25
        conv 8 kernel 3 pad 1 bias off
        batchnorm relu
        residual {
            conv 16 kernel 3 stride 2 pad 1 round floor bias off
            batchnorm eps 1e-3 momentum 0.2 silu
            dw: conv 16 kernel 3 pad 2 dilation 2 groups 16 bias off
            residual { batchnorm gelu conv 16 kernel 1 } relu
            shortcut { conv 16 kernel 1 stride 2 round floor bias off batchnorm }
        } relu
        avgpool global
        flatten
        dense 10 bias off
        batchnorm
        softmax
        train { loss cross_entropy optimizer sgd lr 0.1 momentum 0.9 augment flip horizontal crop 2 flip vertical }
    }",
    "model Mlp { input 12 dense 8 bias off batchnorm relu residual { dense 8 gelu dense 8 } silu dense 1 sigmoid
        train { loss binary_cross_entropy optimizer adam lr 0.01 } }",
];

/// The layers of `seq` chain from `input`: each layer's input is the previous
/// layer's output, and a residual block's body and shortcut both map its input to
/// its output. Returns the output.
fn assert_chain(model: &str, seq: &[cnnc::ir::Layer], input: Shape) -> Shape {
    let mut previous = input;
    for layer in seq {
        assert_eq!(layer.input, previous, "{model}: input of {}", layer.name);
        assert!(!layer.output.is_empty(), "{}: empty output", layer.name);
        if let Op::Residual(r) = &layer.op {
            assert_eq!(
                assert_chain(model, &r.body, layer.input),
                layer.output,
                "{}",
                layer.name
            );
            assert_eq!(
                assert_chain(model, &r.shortcut, layer.input),
                layer.output,
                "{}",
                layer.name
            );
            assert!(!r.body.is_empty(), "{}: empty body", layer.name);
        }
        previous = layer.output;
    }
    previous
}

/// Every model the checker accepts is internally consistent.
fn assert_consistent(source: &str) {
    let Ok(models) = cnnc::compile(source) else { return };
    for m in models {
        let previous = assert_chain(&m.name, &m.layers, m.input);
        assert_eq!(m.output(), previous);
        // Tensor names are unique.
        let mut names: Vec<String> = m.params().into_iter().chain(m.buffers()).map(|p| p.name).collect();
        let count = names.len();
        names.sort();
        names.dedup();
        assert_eq!(names.len(), count, "{}: a tensor name repeats", m.name);
        // Parameters and FLOPs can be computed without overflow.
        let _ = m.param_count();
        let _ = cnnc::summary::summary(&m);
    }
}

#[derive(Debug, Clone)]
enum Edit {
    DeleteToken(usize),
    InsertToken(usize, usize),
    ReplaceToken(usize, usize),
    DeleteChar(usize),
    InsertChar(usize, char),
    ReplaceChar(usize, char),
}

fn edit() -> impl Strategy<Value = Edit> {
    let t = 0..TOKENS.len();
    prop_oneof![
        any::<usize>().prop_map(Edit::DeleteToken),
        (any::<usize>(), t.clone()).prop_map(|(i, t)| Edit::InsertToken(i, t)),
        (any::<usize>(), t).prop_map(|(i, t)| Edit::ReplaceToken(i, t)),
        any::<usize>().prop_map(Edit::DeleteChar),
        (any::<usize>(), any::<char>()).prop_map(|(i, c)| Edit::InsertChar(i, c)),
        (any::<usize>(), prop::char::range(' ', '~')).prop_map(|(i, c)| Edit::ReplaceChar(i, c)),
    ]
}

/// Applies edits to a source: token edits work on whitespace-separated words.
fn mutate(source: &str, edits: &[Edit]) -> String {
    let mut text = source.to_string();
    for e in edits {
        match *e {
            Edit::DeleteToken(i) | Edit::InsertToken(i, _) | Edit::ReplaceToken(i, _) => {
                let mut words: Vec<String> = text.split_whitespace().map(str::to_string).collect();
                let n = words.len();
                match *e {
                    Edit::DeleteToken(_) if n > 0 => {
                        words.remove(i % n);
                    }
                    Edit::InsertToken(_, t) => words.insert(i % (n + 1), TOKENS[t].to_string()),
                    Edit::ReplaceToken(_, t) if n > 0 => words[i % n] = TOKENS[t].to_string(),
                    _ => {}
                }
                text = words.join(" ");
            }
            Edit::DeleteChar(i) | Edit::InsertChar(i, _) | Edit::ReplaceChar(i, _) => {
                let mut chars: Vec<char> = text.chars().collect();
                let n = chars.len();
                match *e {
                    Edit::DeleteChar(_) if n > 0 => {
                        chars.remove(i % n);
                    }
                    Edit::InsertChar(_, c) => chars.insert(i % (n + 1), c),
                    Edit::ReplaceChar(_, c) if n > 0 => chars[i % n] = c,
                    _ => {}
                }
                text = chars.into_iter().collect();
            }
        }
    }
    text
}

/// Renders every diagnostic: locating and drawing an error must not panic either.
fn compile_and_render(source: &str) {
    if let Err(diags) = cnnc::compile(source) {
        assert!(!diags.is_empty());
        let text = diags.render("fuzz.cnn", source);
        assert!(text.contains("--> fuzz.cnn:"), "{text}");
    }
    assert_consistent(source);
}

/// One layer line of a random stack; `pad same` and `round floor` keep most valid.
fn layer_line() -> impl Strategy<Value = String> {
    let act = prop::sample::select(vec!["", " relu", " sigmoid", " tanh", " leaky_relu", " leaky_relu 0.2"]);
    prop_oneof![
        (1usize..6, 1usize..4, 1usize..4, 1usize..3, act.clone())
            .prop_map(|(f, kh, kw, s, a)| format!("conv {f} kernel {kh}x{kw} stride {s} pad same{a}")),
        (1usize..6, 1usize..4, 1usize..3, 0usize..2, act.clone())
            .prop_map(|(f, k, s, p, a)| format!("conv {f} kernel {k} stride {s} pad {p} round floor{a}")),
        (1usize..4, 1usize..3).prop_map(|(k, s)| format!("maxpool {k} stride {s} round floor")),
        (2usize..4, 1usize..3).prop_map(|(k, s)| format!("avgpool {k} stride {s} pad 1 round ceil")),
        (1usize..4, 1usize..3).prop_map(|(k, s)| format!("avgpool {k} stride {s} round floor")),
        Just("avgpool global".to_string()),
        Just("flatten".to_string()),
        (1usize..20, act).prop_map(|(n, a)| format!("dense {n}{a}")),
        Just("dropout 0.3".to_string()),
        Just("relu".to_string()),
        Just("softmax".to_string()),
        Just("batchnorm".to_string()),
        Just("batchnorm momentum 0.5 gelu".to_string()),
        Just("silu".to_string()),
        (1usize..6, 1usize..4, 1usize..3).prop_map(|(f, k, d)| format!("conv {f} kernel {k} dilation {d} pad same bias off")),
        (1usize..4, 1usize..3).prop_map(|(g, m)| format!("conv {} kernel 1 groups {g}", g * m)),
        Just("residual { batchnorm relu dropout 0.1 } silu".to_string()),
        (1usize..4).prop_map(|f| format!("residual {{ conv {f} kernel 3 pad 1 relu conv {f} kernel 3 pad 1 }} relu")),
        (1usize..4).prop_map(|f| format!(
            "residual {{ conv {f} kernel 3 stride 2 pad 1 round floor shortcut {{ conv {f} kernel 1 stride 2 round floor }} }}"
        )),
    ]
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 512, ..ProptestConfig::default() })]

    #[test]
    fn arbitrary_strings_never_panic(source in any::<String>()) {
        compile_and_render(&source);
    }

    #[test]
    fn token_soups_never_panic(words in prop::collection::vec(prop::sample::select(TOKENS.clone()), 0..40)) {
        compile_and_render(&words.join(" "));
    }

    #[test]
    fn mutated_examples_never_panic(
        example in prop::sample::select([EXAMPLES, V2_EXAMPLES].concat()),
        edits in prop::collection::vec(edit(), 1..6),
    ) {
        compile_and_render(&mutate(example, &edits));
    }

    #[test]
    fn accepted_stacks_have_consistent_shapes(
        c in 1usize..4,
        h in 1usize..20,
        w in 1usize..20,
        layers in prop::collection::vec(layer_line(), 0..12),
    ) {
        let source = format!("model R {{ input {c}x{h}x{w}\n{}\n}}", layers.join("\n"));
        compile_and_render(&source);
        if let Ok(models) = cnnc::compile(&source) {
            let m = &models[0];
            prop_assert_eq!(m.input, Shape::Image { c, h, w });
            for l in &m.layers {
                if let (Op::Dense(d), Shape::Vector(n)) = (&l.op, l.output) {
                    prop_assert_eq!(d.units, n);
                }
            }
        }
    }
}

#[test]
fn the_random_stacks_are_often_valid() {
    // Guards the property above against testing nothing: a typical stack is accepted.
    let source = "model R { input 3x9x9\nconv 4 kernel 3x2 stride 2 pad same relu\nmaxpool 2 stride 1 round floor\n\
                  avgpool 3 stride 2 pad 1 round ceil\navgpool global\nflatten\ndense 5 leaky_relu 0.2\nsoftmax\n}";
    let models = cnnc::compile(source).expect("valid stack");
    assert_eq!(models[0].output(), Shape::Vector(5));
}

#[test]
fn mutation_changes_the_text() {
    let src = "model M { input 4 dense 2 }";
    assert_eq!(mutate(src, &[Edit::DeleteToken(0)]), "M { input 4 dense 2 }");
    assert_eq!(mutate(src, &[Edit::ReplaceChar(6, 'N')]), "model N { input 4 dense 2 }");
}

#[test]
fn v2_examples_are_valid() {
    for source in V2_EXAMPLES {
        if let Err(d) = cnnc::compile(source) {
            panic!("{}", d.render("v2.cnn", source));
        }
        assert_consistent(source);
    }
}
