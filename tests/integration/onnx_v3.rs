//! ONNX import of language version 3's graphs: models written with `from`,
//! `concat`, `add`, `mul`, `convtranspose`, `upsample` and `maxpool global` go to
//! ONNX and back to the same model (references compared by the layer they name),
//! read as a person would write them, and compute the same; the Resize, Upsample,
//! ConvTranspose and Softmax forms cnnc cannot write are errors that name the node
//! and the attribute. PyTorch's own exports of such graphs are in onnx.rs.

use crate::common::input;
use cnnc::interp::Interpreter;
use cnnc::onnx::proto::attribute_proto::AttributeType;
use cnnc::onnx::proto::{AttributeProto, ModelProto, NodeProto, TensorProto};
use cnnc::Model;
use prost::Message;

/// The checked model of `source`, its interpreter (seed 7) and its export.
fn exported(source: &str) -> (cnnc::ir::Model, Interpreter, ModelProto) {
    let model = cnnc::compile(source).expect("valid").remove(0);
    let interp = Interpreter::new(model.clone(), 7);
    let bytes = cnnc::onnx::export(&model, &interp).expect("export");
    (model, interp, ModelProto::decode(bytes.as_slice()).expect("own export"))
}

fn import(proto: &ModelProto) -> Result<cnnc::onnx::Imported, String> {
    cnnc::onnx::import(&proto.encode_to_vec(), "v3.onnx", None, "Imported", false)
}

/// `source` -> ONNX -> `.cnn`: the same layers (names aside, references by
/// position) and the same predictions; returns the imported text.
fn round_trip(source: &str) -> String {
    let (model, mut interp, proto) = exported(source);
    let imported = import(&proto).unwrap_or_else(|e| panic!("{e}"));
    let back = cnnc::compile(&imported.source)
        .unwrap_or_else(|e| panic!("{}\n{e:?}", imported.source))
        .remove(0);
    assert_eq!(
        crate::onnx::shape_of_layers(&back.layers),
        crate::onnx::shape_of_layers(&model.layers),
        "imported as\n{}",
        imported.source
    );
    let mut again = imported.interpreter().unwrap_or_else(|e| panic!("{e}"));
    let mut shape = vec![2];
    shape.extend(model.input.dims());
    let x = input(&shape);
    let (want, got) = (interp.predict(x.view()).unwrap(), again.predict(x.view()).unwrap());
    crate::common::close(&model.name, &got, &want, 1e-6, 1e-7);
    imported.source
}

/// The body of the model in `text` (its lines, trimmed, without comments).
fn lines(text: &str) -> Vec<String> {
    text.lines()
        .map(str::trim)
        .filter(|l| !l.is_empty() && !l.starts_with("//") && !l.starts_with("model") && *l != "}")
        .map(str::to_string)
        .collect()
}

#[test]
fn a_densenet_like_concat_chain_round_trips() {
    let text = round_trip(
        "model DenseChain {
            input 3x8x8
            stem: conv 6 kernel 3 pad 1 relu
            batchnorm relu
            c1: conv 4 kernel 3 pad 1 bias off
            concat stem
            batchnorm relu
            c2: conv 4 kernel 3 pad 1 bias off
            concat c1 stem
            batchnorm relu
            conv 4 kernel 3 pad 1 bias off
            concat c2 c1 stem
            conv 8 kernel 1 relu
            avgpool 2
            flatten
            dense 5 softmax
        }",
    );
    let body = lines(&text);
    assert_eq!(
        body[1..12],
        [
            "stem: conv 6 kernel 3 pad 1 relu",
            "batchnorm relu",
            "c1: conv 4 kernel 3 pad 1 bias off",
            "concat stem",
            "batchnorm relu",
            "c2: conv 4 kernel 3 pad 1 bias off",
            "concat c1 stem",
            "batchnorm relu",
            "conv 4 kernel 3 pad 1 bias off",
            "concat c2 c1 stem",
            "conv 8 kernel 1 relu",
        ],
        "{text}"
    );
}

/// Branches from one tensor (`from`), a concat of their ends, and an `add` with
/// an activation of a fourth branch; the items read again without a name of their
/// own get one that is no default name.
#[test]
fn an_inception_like_model_with_from_round_trips() {
    let text = round_trip(
        "model Incept {
            input 4x8x8
            stem: conv 8 kernel 3 pad 1 relu
            conv 4 kernel 1 relu
            conv 4 kernel 3 pad 1 relu
            from stem
            b: conv 4 kernel 1 relu
            from stem
            maxpool 3 stride 1 pad 1
            conv 4 kernel 1 relu
            concat conv3 b
            from stem
            conv 12 kernel 1
            add concat1 relu
            maxpool global
            flatten
            dense 3 softmax
        }",
    );
    let body = lines(&text);
    assert_eq!(
        body[1..14],
        [
            "stem: conv 8 kernel 3 pad 1 relu",
            "conv 4 kernel 1 relu",
            "t1: conv 4 kernel 3 pad 1 relu",
            "from stem",
            "b: conv 4 kernel 1 relu",
            "from stem",
            "maxpool 3 stride 1 pad 1",
            "conv 4 kernel 1 relu",
            "t2: concat t1 b",
            "from stem",
            "conv 12 kernel 1",
            "add t2 relu",
            "maxpool global",
        ],
        "{text}"
    );
}

/// Squeeze-and-excitation: a Cx1x1 gate times the map it was computed from. ONNX's
/// Mul commutes: with the map first (PyTorch's `x * gate`), it is still `mul x`.
#[test]
fn a_squeeze_excitation_block_round_trips_either_operand_first() {
    let source = "model SE {
        input 3x8x8
        x: conv 8 kernel 3 pad 1 relu6
        avgpool global
        conv 4 kernel 1 relu
        conv 8 kernel 1 hardsigmoid
        mul x
        y: conv 8 kernel 3 pad 1
        avgpool global
        conv 8 kernel 1 sigmoid
        mul y relu
        flatten
        dense 3 softmax
    }";
    let text = round_trip(source);
    assert!(text.contains("hardsigmoid\n    mul x\n"), "{text}");
    assert!(text.contains("sigmoid\n    mul y relu\n"), "{text}");

    let (_, _, mut proto) = exported(source);
    for node in &mut proto.graph.as_mut().expect("graph").node {
        if node.op_type.as_deref() == Some("Mul") {
            node.input.swap(0, 1);
        }
    }
    let swapped = import(&proto).expect("imports");
    assert_eq!(lines(&swapped.source), lines(&text));
}

/// A U-Net (v3_unet_tiny's model, with a bilinear upsampling and a padded
/// transposed convolution): convtranspose, concat with the encoder maps, upsample,
/// per-pixel softmax.
#[test]
fn a_unet_round_trips() {
    let text = round_trip(
        "model UNet {
            input 2x8x8
            e1: conv 4 kernel 3 pad 1 relu
            maxpool 2
            e2: conv 6 kernel 3 pad 1 relu
            maxpool 2
            conv 8 kernel 3 pad 1 relu
            up: convtranspose 6 kernel 2 stride 2
            concat e2
            conv 6 kernel 3 pad 1 relu
            upsample 2
            concat e1
            convtranspose 4 kernel 3 stride 1 pad 1 relu
            upsample 2 bilinear
            maxpool 2
            conv 3 kernel 1 softmax
        }",
    );
    for line in [
        "up: convtranspose 6 kernel 2 stride 2\n    concat e2\n",
        "upsample 2\n    concat e1\n",
        "convtranspose 4 kernel 3 pad 1 relu\n",
        "upsample 2 bilinear\n",
        "conv 3 kernel 1 softmax\n",
    ] {
        assert!(text.contains(line), "no `{line}` in\n{text}");
    }
}

/// A label in the file that looks like a made-up name: the made-up ones skip it.
#[test]
fn made_up_names_skip_the_names_in_the_file() {
    let text = round_trip(
        "model Names {
            input 3x6x6
            t1: conv 4 kernel 3 pad 1 relu
            conv 4 kernel 3 pad 1 relu
            conv 4 kernel 1
            concat t1 conv2
        }",
    );
    assert!(text.contains("t2: conv 4 kernel 3 pad 1 relu\n"), "{text}");
    assert!(text.contains("concat t1 t2\n"), "{text}");
}

/// A node out of order (ONNX requires an order, not every writer keeps it) and a
/// node the output does not depend on: the same model.
#[test]
fn node_order_and_dead_nodes_do_not_matter() {
    let source = "model Incept {
        input 4x8x8
        stem: conv 8 kernel 3 pad 1 relu
        a: conv 4 kernel 1 relu
        from stem
        conv 4 kernel 3 pad 1 relu
        concat a
        flatten
        dense 3
    }";
    let (_, _, proto) = exported(source);
    let want = import(&proto).expect("imports").source;
    let mut changed = proto.clone();
    let graph = changed.graph.as_mut().expect("graph");
    let first = graph.node.remove(0);
    graph.node.push(first);
    graph.node.push(NodeProto {
        input: vec!["stem".into()],
        output: vec!["unused".into()],
        name: Some("unused".into()),
        op_type: Some("Celu".into()),
        ..Default::default()
    });
    assert_eq!(lines(&import(&changed).expect("imports").source), lines(&want));
}

fn node<'a>(proto: &'a mut ModelProto, op: &str) -> &'a mut NodeProto {
    let graph = proto.graph.as_mut().expect("graph");
    graph
        .node
        .iter_mut()
        .find(|n| n.op_type.as_deref() == Some(op))
        .unwrap_or_else(|| panic!("no {op}"))
}

fn initializer<'a>(proto: &'a mut ModelProto, name: &str) -> &'a mut TensorProto {
    let graph = proto.graph.as_mut().expect("graph");
    graph
        .initializer
        .iter_mut()
        .find(|t| t.name.as_deref() == Some(name))
        .unwrap_or_else(|| panic!("no {name}"))
}

fn set_floats(t: &mut TensorProto, values: &[f32]) {
    t.raw_data = Some(values.iter().flat_map(|v| v.to_le_bytes()).collect());
    t.dims = vec![values.len() as i64];
}

fn string_attr(name: &str, value: &str) -> AttributeProto {
    AttributeProto {
        name: Some(name.into()),
        r#type: Some(AttributeType::String as i32),
        s: Some(value.as_bytes().to_vec()),
        ..Default::default()
    }
}

fn ints_attr(name: &str, values: &[i64]) -> AttributeProto {
    AttributeProto {
        name: Some(name.into()),
        r#type: Some(AttributeType::Ints as i32),
        ints: values.to_vec(),
        ..Default::default()
    }
}

/// Replaces (or adds) the attribute of that name.
fn set_attr(node: &mut NodeProto, attr: AttributeProto) {
    node.attribute.retain(|a| a.name != attr.name);
    node.attribute.push(attr);
}

const UPSAMPLE: &str = "model Up {
    input 2x3x4
    conv 2 kernel 1
    upsample 2x3
    flatten
}";

/// A Resize by a factor that is no whole number, or that scales the channels, is
/// an error naming the node and its `scales`.
#[test]
fn a_resize_by_no_whole_factor_is_an_error() {
    for scales in [[1.0, 1.0, 1.5, 1.5], [1.0, 2.0, 2.0, 2.0], [1.0, 1.0, 0.5, 1.0]] {
        let (_, _, mut proto) = exported(UPSAMPLE);
        set_floats(initializer(&mut proto, "upsample1.scales"), &scales);
        let err = import(&proto).err().expect("not a whole factor");
        assert!(
            err.starts_with("v3.onnx: node `upsample1` (Resize, opset 17): `scales` is"),
            "{err}"
        );
        assert!(err.contains("whole factors"), "{err}");
    }
}

/// String attributes set on a node.
type Attrs<'a> = &'a [(&'a str, &'a str)];

/// Resize modes: each that is PyTorch's `nearest` or `bilinear` (align_corners
/// false) reads as `upsample`; the others name the attribute.
#[test]
fn resize_modes_read_as_upsample_or_name_the_attribute() {
    let cases: &[(Attrs, Result<&str, &str>)] = &[
        (&[], Ok("upsample 2x3\n")),
        (
            &[
                ("coordinate_transformation_mode", "half_pixel"),
                ("nearest_mode", "round_prefer_floor"),
            ],
            Ok("upsample 2x3\n"),
        ),
        (
            &[("coordinate_transformation_mode", "half_pixel")],
            Err("`coordinate_transformation_mode` half_pixel and `nearest_mode` floor does not repeat each pixel"),
        ),
        (
            &[
                ("coordinate_transformation_mode", "half_pixel"),
                ("nearest_mode", "round_prefer_ceil"),
            ],
            Ok("upsample 2x3\n"),
        ),
        (
            &[("nearest_mode", "round_prefer_ceil")],
            Err("`coordinate_transformation_mode` asymmetric and `nearest_mode` round_prefer_ceil"),
        ),
        (
            &[("mode", "linear"), ("coordinate_transformation_mode", "half_pixel")],
            Ok("upsample 2x3 bilinear\n"),
        ),
        (
            &[("mode", "linear"), ("coordinate_transformation_mode", "align_corners")],
            Err("`coordinate_transformation_mode` align_corners"),
        ),
        (&[("mode", "cubic")], Err("`mode` cubic")),
        (
            &[("coordinate_transformation_mode", "tf_crop_and_resize")],
            Err("`coordinate_transformation_mode` tf_crop_and_resize"),
        ),
    ];
    for (attrs, want) in cases {
        let (_, _, mut proto) = exported(UPSAMPLE);
        let resize = node(&mut proto, "Resize");
        for (k, v) in *attrs {
            set_attr(resize, string_attr(k, v));
        }
        match (import(&proto), want) {
            (Ok(imported), Ok(line)) => assert!(imported.source.contains(line), "{attrs:?}: {}", imported.source),
            (Err(e), Err(part)) => {
                assert!(
                    e.contains("node `upsample1` (Resize, opset 17)") && e.contains(part),
                    "{attrs:?}: {e}"
                )
            }
            (got, _) => panic!("{attrs:?}: {:?}", got.map(|i| i.source)),
        }
    }
}

/// A change to a node.
type Edit<'a> = dyn Fn(&mut NodeProto) + 'a;

/// Older exports: Upsample with `scales` as an attribute (opset 7) and as an input
/// (opset 9), Resize at opset 10 (nearest rounds down there), Resize with `sizes`
/// instead of `scales`; a linear Resize before opset 11 is not PyTorch's bilinear.
#[test]
fn older_upsample_and_resize_forms_read_as_upsample() {
    let (_, mut interp, proto) = exported(UPSAMPLE);
    let x = input(&[2, 2, 3, 4]);
    let want = interp.predict(x.view()).unwrap();
    let at = |opset: i64, edit: &Edit<'_>| {
        let mut p = proto.clone();
        p.opset_import[0].version = Some(opset);
        let resize = node(&mut p, "Resize");
        resize.attribute.clear();
        edit(resize);
        import(&p)
    };
    let attr = |n: &mut NodeProto| {
        n.op_type = Some("Upsample".into());
        n.input = vec![n.input[0].clone()];
        n.attribute.push(AttributeProto {
            name: Some("scales".into()),
            r#type: Some(AttributeType::Floats as i32),
            floats: vec![1.0, 1.0, 2.0, 3.0],
            ..Default::default()
        });
    };
    let input9 = |n: &mut NodeProto| {
        n.op_type = Some("Upsample".into());
        n.input = vec![n.input[0].clone(), n.input[2].clone()];
    };
    let resize10 = |n: &mut NodeProto| n.input = vec![n.input[0].clone(), n.input[2].clone()];
    let sizes = |n: &mut NodeProto| {
        n.input = vec![n.input[0].clone(), String::new(), String::new(), "sizes".into()];
        set_attr(n, string_attr("coordinate_transformation_mode", "asymmetric"));
        set_attr(n, string_attr("nearest_mode", "floor"));
    };
    let cases: [(i64, &Edit<'_>); 4] = [(7, &attr), (9, &input9), (10, &resize10), (13, &sizes)];
    for (opset, edit) in cases {
        let mut p = proto.clone();
        p.graph.as_mut().expect("graph").initializer.push(TensorProto {
            name: Some("sizes".into()),
            dims: vec![4],
            data_type: Some(7),
            int64_data: vec![1, 2, 6, 12],
            ..Default::default()
        });
        p.opset_import[0].version = Some(opset);
        let resize = node(&mut p, "Resize");
        resize.attribute.clear();
        edit(resize);
        let imported = import(&p).unwrap_or_else(|e| panic!("opset {opset}: {e}"));
        assert!(imported.source.contains("upsample 2x3\n"), "{}", imported.source);
        let got = imported.interpreter().unwrap().predict(x.view()).unwrap();
        crate::common::close("upsample", &got, &want, 0.0, 0.0);
    }
    let linear = |n: &mut NodeProto| {
        resize10(n);
        n.attribute.push(string_attr("mode", "linear"));
    };
    let err = at(10, &linear).err().expect("asymmetric linear");
    assert!(
        err.contains("(Resize, opset 10): linear `mode` before opset 11"),
        "{err}"
    );
}

/// ConvTranspose with padding that differs between the sides of an axis, with
/// `auto_pad` SAME_*, or with an `output_shape` its pads do not give: errors naming
/// the node and the attribute.
#[test]
fn conv_transpose_forms_the_language_cannot_write_are_errors() {
    let source = "model Up { input 3x4x4 up: convtranspose 2 kernel 3 stride 2 pad 1 output_pad 1 flatten }";
    let (_, _, proto) = exported(source);
    assert!(import(&proto)
        .expect("imports")
        .source
        .contains("up: convtranspose 2 kernel 3 stride 2 pad 1 output_pad 1"));
    let cases = [
        (ints_attr("pads", &[1, 1, 0, 1]), "`pads` is [1, 1, 0, 1]"),
        (string_attr("auto_pad", "SAME_UPPER"), "`auto_pad` SAME_UPPER"),
        (
            ints_attr("output_shape", &[9, 9]),
            "`output_shape` [9, 9] is not the 8x8",
        ),
        (ints_attr("output_padding", &[2, 2]), "`output_padding` 2 with stride 2"),
    ];
    for (attr, part) in cases {
        let mut p = proto.clone();
        set_attr(node(&mut p, "ConvTranspose"), attr);
        let err = import(&p).err().expect("not written");
        assert!(
            err.contains("node `up` (ConvTranspose, opset 17)") && err.contains(part),
            "{err}"
        );
    }
}

/// Softmax over the channels of each position reads as `softmax` from opset 13 on;
/// before, ONNX's Softmax on an image takes C·H·W at once, and PyTorch's exporter
/// writes the per-position one as Transpose, Softmax over the last axis, Transpose
/// back, which reads as `softmax` too. LogSoftmax is not in the language.
#[test]
fn softmax_on_images_and_log_softmax() {
    let source = "model Seg { input 2x4x5 conv 3 kernel 1 softmax }";
    let (_, mut interp, proto) = exported(source);
    for perm in [[0, 3, 2, 1], [0, 2, 3, 1]] {
        let mut old = proto.clone();
        old.opset_import[0].version = Some(11);
        let graph = old.graph.as_mut().expect("graph");
        let at = graph
            .node
            .iter()
            .position(|n| n.op_type.as_deref() == Some("Softmax"))
            .expect("softmax");
        let softmax = graph.node.remove(at);
        let back: Vec<i64> = (0..4)
            .map(|k| perm.iter().position(|&p| p == k).unwrap() as i64)
            .collect();
        let nodes = [
            (
                "Transpose",
                vec![softmax.input[0].clone()],
                "t",
                ints_attr("perm", &perm),
            ),
            (
                "Softmax",
                vec!["t".into()],
                "s",
                AttributeProto {
                    name: Some("axis".into()),
                    r#type: Some(AttributeType::Int as i32),
                    i: Some(3),
                    ..Default::default()
                },
            ),
            ("Transpose", vec!["s".into()], "output", ints_attr("perm", &back)),
        ];
        for (k, (op, input, out, attr)) in nodes.into_iter().enumerate() {
            graph.node.insert(
                at + k,
                NodeProto {
                    input,
                    output: vec![out.into()],
                    name: Some(format!("/{op}_{k}")),
                    op_type: Some(op.into()),
                    attribute: vec![attr],
                    ..Default::default()
                },
            );
        }
        let imported = import(&old).unwrap_or_else(|e| panic!("{perm:?}: {e}"));
        assert!(
            imported.source.contains("conv 3 kernel 1 softmax\n"),
            "{}",
            imported.source
        );
        let x = input(&[2, 2, 4, 5]);
        let got = imported.interpreter().unwrap().predict(x.view()).unwrap();
        crate::common::close("softmax", &got, &interp.predict(x.view()).unwrap(), 0.0, 0.0);
    }
    assert!(import(&proto)
        .expect("imports")
        .source
        .contains("conv 3 kernel 1 softmax"));
    let mut old = proto.clone();
    old.opset_import[0].version = Some(11);
    let err = import(&old).err().expect("C·H·W at once");
    assert!(
        err.contains("(Softmax, opset 11)") && err.contains("before opset 13"),
        "{err}"
    );
    let mut log = proto;
    node(&mut log, "Softmax").op_type = Some("LogSoftmax".into());
    let err = import(&log).err().expect("no log-softmax");
    assert!(
        err.contains("(LogSoftmax, opset 17): the language has no log-softmax"),
        "{err}"
    );
}

/// Joins the language cannot write: a Concat along another axis, an Add of
/// different shapes, an Add of a constant that is no dense layer's bias.
#[test]
fn joins_the_language_cannot_write_are_errors() {
    let source =
        "model J { input 2x4x4 a: conv 2 kernel 1 conv 2 kernel 1 concat a conv 2 kernel 1 add a relu flatten }";
    let (_, _, proto) = exported(source);
    if let Err(e) = import(&proto) {
        panic!("{e}");
    }
    let mut axis = proto.clone();
    set_attr(
        node(&mut axis, "Concat"),
        AttributeProto {
            name: Some("axis".into()),
            r#type: Some(AttributeType::Int as i32),
            i: Some(2),
            ..Default::default()
        },
    );
    let err = import(&axis).err().expect("axis 2");
    assert!(
        err.contains("node `concat1` (Concat, opset 17): concatenates 2x4x4 tensors along axis 2"),
        "{err}"
    );

    let mut shapes = proto.clone();
    node(&mut shapes, "Add").input[1] = "concat1".into();
    let err = import(&shapes).err().expect("2 and 4 channels");
    assert!(
        err.contains(
            "node `add1` (Add, opset 17): joins 2x4x4 (`conv3`) and 4x4x4 (`concat1`); `add` needs equal shapes"
        ),
        "{err}"
    );

    let mut constant = proto;
    node(&mut constant, "Add").input[1] = "conv3.bias".into();
    let err = import(&constant).err().expect("a constant");
    assert!(
        err.contains("node `add1` (Add, opset 17): arithmetic with a constant"),
        "{err}"
    );
}
