//! The inference plan: what only a compiler that sees the whole network knows,
//! used where training cannot use it.
//!
//! In inference a batchnorm is a constant affine map per channel, so it folds
//! into the convolution before it: each filter's weights scaled by
//! `γ/√(var + ε)`, its bias shifted to `(b - mean)·γ/√(var + ε) + β`, the
//! batchnorm's activation taken over. And a residual join adds a tensor that
//! already exists when the convolution producing its other input runs, so that
//! convolution adds it in its store ([`crate::compute::conv::Epilogue`]). On
//! ResNet-8 that removes nine batchnorm and three add passes over memory.
//!
//! The folded weights live in a buffer of their own (`Pass::folded`), which the
//! driver fills from the parameters and running statistics when either changed
//! since the last prediction; the parameters and saved files stay PyTorch's.

use super::plan::{Activation, Fold, Kind, Plan, Step};

impl Plan {
    /// The plan inference runs: this one with every batchnorm that directly
    /// follows a convolution folded into it and every residual join fused into
    /// the convolution that produces its later input. `None` when nothing fuses
    /// (inference then runs the forward phases).
    pub fn inference(&self) -> Option<Plan> {
        let mut folds = Vec::new();
        let mut folded_len = 0;
        let mut steps: Vec<Step> = Vec::with_capacity(self.steps.len());
        for step in &self.steps {
            if let Kind::BatchNorm { index, act, .. } = step.kind {
                if let Some(conv) = steps.last_mut().filter(|c| self.folds_into(c, step)) {
                    let weight = conv.weight.expect("a convolution has a weight");
                    let (weight_len, filters) = (self.params[weight].len(), self.params[weight].shape[0]);
                    folds.push(Fold {
                        weight,
                        bias: conv.bias,
                        batchnorm: index,
                        gamma: step.weight,
                        beta: step.bias,
                        offset: folded_len,
                        weight_len,
                        filters,
                    });
                    folded_len += weight_len + filters;
                    conv.folded = Some(folds.len() - 1);
                    set_act(conv, act);
                    conv.output = step.output;
                    conv.name = format!("{}+{}", conv.name, step.name);
                    continue;
                }
            }
            if let Kind::Add { act } = step.kind {
                // The later of the two producers; the other input exists when it runs.
                let producer = |b: usize| steps.iter().rposition(|s| s.output == b);
                let (p0, p1) = (producer(step.inputs[0]), producer(step.inputs[1]));
                let (later, other) = match (p0, p1) {
                    (Some(a), Some(b)) if a > b => (Some(a), 1),
                    (Some(a), None) => (Some(a), 1),
                    (_, later) => (later, 0),
                };
                if let Some(p) = later.filter(|&p| self.add_fuses_into(&steps[p])) {
                    let conv = &mut steps[p];
                    conv.inputs.push(step.inputs[other]);
                    set_act(conv, act);
                    conv.output = step.output;
                    conv.name = format!("{}+{}", conv.name, step.name);
                    continue;
                }
            }
            steps.push(step.clone());
        }
        if steps.len() == self.steps.len() {
            return None;
        }
        Some(Plan {
            steps,
            folds,
            folded_len,
            ..self.clone()
        })
    }

    /// Whether batchnorm step `bn` folds into `conv`, the step planned just
    /// before it: a convolution with no activation of its own whose output
    /// only the batchnorm reads.
    fn folds_into(&self, conv: &Step, bn: &Step) -> bool {
        matches!(
            conv.kind,
            Kind::Conv {
                act: Activation::Identity,
                ..
            }
        ) && conv.folded.is_none()
            && conv.inputs.len() == 1
            && bn.inputs[0] == conv.output
            && self.readers(conv.output) == 1
    }

    /// Whether a residual join fuses into `conv`: a convolution with no
    /// activation of its own, not already joined, whose output only the join reads.
    fn add_fuses_into(&self, conv: &Step) -> bool {
        matches!(
            conv.kind,
            Kind::Conv {
                act: Activation::Identity,
                ..
            }
        ) && conv.inputs.len() == 1
            && self.readers(conv.output) == 1
    }
}

fn set_act(conv: &mut Step, to: Activation) {
    if let Kind::Conv { act, .. } = &mut conv.kind {
        *act = to;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn plan(src: &str) -> Plan {
        Plan::new(&crate::compile(src).expect("valid model")[0])
    }

    #[test]
    fn batchnorms_fold_and_joins_fuse_into_the_convolutions_of_a_residual_block() {
        let p = plan(
            "model M { input 4x8x8 conv 8 kernel 3 pad 1 bias off batchnorm relu \
             residual { conv 8 kernel 3 pad 1 batchnorm relu conv 8 kernel 3 pad 1 batchnorm } relu \
             residual { conv 16 kernel 3 pad 1 stride 2 round floor batchnorm relu conv 16 kernel 3 pad 1 batchnorm \
               shortcut { conv 16 kernel 1 stride 2 round floor batchnorm } } relu \
             avgpool global flatten dense 3 }",
        );
        let inf = p.inference().expect("something fuses");
        let names: Vec<&str> = inf.steps.iter().map(|s| s.name.as_str()).collect();
        assert_eq!(
            names,
            [
                "conv1+batchnorm1+relu1",
                "residual1.conv1+residual1.batchnorm1+residual1.relu1",
                "residual1.conv2+residual1.batchnorm2+residual1+relu2",
                "residual2.conv1+residual2.batchnorm1+residual2.relu1",
                "residual2.conv2+residual2.batchnorm2",
                "residual2.shortcut.conv1+residual2.shortcut.batchnorm1+residual2+relu3",
                "avgpool1",
                "dense1",
            ]
        );
        assert_eq!(inf.folds.len(), 6);
        // The identity shortcut joins the block's input; the projection joins the body.
        assert_eq!(inf.steps[2].inputs, [inf.steps[1].output, inf.steps[0].output]);
        assert_eq!(inf.steps[5].inputs[1], inf.steps[4].output);
        assert_eq!(
            inf.steps[5].output,
            p.steps.iter().find(|s| s.name == "residual2+relu3").unwrap().output
        );
        let last = inf.folds.last().unwrap();
        assert_eq!(inf.folded_len, last.offset + last.weight_len + last.filters);
        assert_eq!((last.weight_len, last.filters), (16 * 8, 16));
    }

    #[test]
    fn nothing_fuses_without_batchnorms_or_joins_after_convolutions() {
        assert!(
            plan("model M { input 1x8x8 conv 4 kernel 3 relu maxpool 2 flatten dense 3 softmax }")
                .inference()
                .is_none()
        );
        // A batchnorm before the join (pre-activation) and one whose input is read
        // twice stay steps of their own.
        let p = plan("model M { input 4x8x8 residual { batchnorm relu conv 4 kernel 3 pad 1 } batchnorm }");
        let inf = p.inference().expect("the join fuses");
        let kinds: Vec<&str> = inf.steps.iter().map(|s| s.name.as_str()).collect();
        assert_eq!(
            kinds,
            [
                "residual1.batchnorm1+residual1.relu1",
                "residual1.conv1+residual1",
                "batchnorm1"
            ]
        );
        assert!(inf.folds.is_empty());
    }
}
