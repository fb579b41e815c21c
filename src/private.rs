//! What generated code reaches, and nothing else: the driver, the kernels it
//! calls (through `compute::layers`, which dispatches on the CPU once), and two
//! macros. Not public API: it changes with the code generator.
//!
//! Generated code names every path absolutely (`::cnnc::__private::...`,
//! `::core::...`) and lives in a private module per model, so nothing a user
//! defines next to a `cnn!` call can change what it means.

pub use crate::compute::join::{self, MulShape};
pub use crate::compute::layers::{
    avg_pool_backward, avg_pool_forward, conv_backward, conv_forward, conv_scratch, conv_transpose_backward_dyn,
    conv_transpose_forward_dyn, dense_backward, dense_forward, dense_scratch, max_pool_backward, max_pool_forward,
    upsample_backward_dyn, upsample_forward_dyn, ConvLayer, DenseLayer, PoolLayer,
};
pub use crate::compute::transpose::TransposeShape;
pub use crate::compute::upsample::UpsampleShape;
pub use crate::compute::{act, dropout, norm, pool, Activation, ConvShape, PoolShape};
pub use crate::ir::{Augment, InitScheme, Loss, Optimizer, Schedule, Warmup};
pub use crate::rt::driver::{
    chunks, Backward, BatchNormSlot, Driver, Fold, Init, LayerOutput, LossIo, Network, Pass, Source, Spec, Tensor,
    TrainSpec, Worker,
};
pub use crate::{__model as model, __train as train};

/// A tensor's place in a flat vector (parameters, shared statistics, folded
/// weights): generated code names each one as a constant of this type.
pub type Range = core::ops::Range<usize>;

/// The user-facing methods and the `Model` implementation of generated model
/// `$name`, a tuple struct around `Driver<$net>`.
#[doc(hidden)]
#[macro_export]
macro_rules! __model {
    ($name:ident) => {
        impl $name {
            /// A model with the spec's initialization (He normal before relu, Xavier
            /// uniform otherwise, biases 0, batchnorm weight 1), drawn from `seed`.
            pub fn new(seed: ::core::primitive::u64) -> Self {
                $name($crate::__private::Driver::new(seed))
            }

            /// Saves parameters and buffers with PyTorch names and layouts.
            pub fn save_safetensors(
                &self,
                path: impl ::core::convert::AsRef<::std::path::Path>,
            ) -> ::core::result::Result<(), $crate::Error> {
                self.0.save_safetensors(path.as_ref())
            }

            /// Loads parameters and buffers saved by `save_safetensors` or by PyTorch.
            pub fn load_safetensors(
                &mut self,
                path: impl ::core::convert::AsRef<::std::path::Path>,
            ) -> ::core::result::Result<(), $crate::Error> {
                self.0.load_safetensors(path.as_ref())
            }

            /// Loads the tensors a weight file has, leaves the others as they are and
            /// ignores the file's extra ones (PyTorch's `strict=False`): a pretrained
            /// body into a model with a new head. A shape mismatch is an error.
            pub fn load_safetensors_partial(
                &mut self,
                path: impl ::core::convert::AsRef<::std::path::Path>,
            ) -> ::core::result::Result<$crate::rt::weights::LoadReport, $crate::Error> {
                self.0.load_safetensors_partial(path.as_ref())
            }

            /// Inference into a caller's buffer of `N * OUTPUT_SHAPE` values; allocates nothing.
            pub fn predict_into(
                &mut self,
                x: $crate::ndarray::ArrayViewD<'_, ::core::primitive::f32>,
                out: &mut [::core::primitive::f32],
            ) -> ::core::result::Result<(), $crate::Error> {
                self.0.predict_into(x, out)
            }
        }

        impl $crate::Model for $name {
            fn input_shape(&self) -> &[::core::primitive::usize] {
                $crate::Model::input_shape(&self.0)
            }
            fn output_shape(&self) -> &[::core::primitive::usize] {
                $crate::Model::output_shape(&self.0)
            }
            fn param_names(&self) -> ::std::vec::Vec<::std::string::String> {
                $crate::Model::param_names(&self.0)
            }
            fn param(
                &self,
                name: &::core::primitive::str,
            ) -> ::core::option::Option<$crate::ndarray::ArrayD<::core::primitive::f32>> {
                $crate::Model::param(&self.0, name)
            }
            fn set_param(
                &mut self,
                name: &::core::primitive::str,
                value: $crate::ndarray::ArrayViewD<'_, ::core::primitive::f32>,
            ) -> ::core::result::Result<(), $crate::Error> {
                $crate::Model::set_param(&mut self.0, name, value)
            }
            fn predict(
                &mut self,
                x: $crate::ndarray::ArrayViewD<'_, ::core::primitive::f32>,
            ) -> ::core::result::Result<$crate::ndarray::ArrayD<::core::primitive::f32>, $crate::Error> {
                $crate::Model::predict(&mut self.0, x)
            }
            fn activations(
                &mut self,
                x: $crate::ndarray::ArrayViewD<'_, ::core::primitive::f32>,
            ) -> ::core::result::Result<
                ::std::vec::Vec<(
                    ::std::string::String,
                    $crate::ndarray::ArrayD<::core::primitive::f32>,
                )>,
                $crate::Error,
            > {
                $crate::Model::activations(&mut self.0, x)
            }
            fn buffer_names(&self) -> ::std::vec::Vec<::std::string::String> {
                $crate::Model::buffer_names(&self.0)
            }
            fn buffer(
                &self,
                name: &::core::primitive::str,
            ) -> ::core::option::Option<$crate::ndarray::ArrayD<::core::primitive::f32>> {
                $crate::Model::buffer(&self.0, name)
            }
            fn set_buffer(
                &mut self,
                name: &::core::primitive::str,
                value: $crate::ndarray::ArrayViewD<'_, ::core::primitive::f32>,
            ) -> ::core::result::Result<(), $crate::Error> {
                $crate::Model::set_buffer(&mut self.0, name, value)
            }
            fn batches_tracked(&self) -> ::core::primitive::u64 {
                $crate::Model::batches_tracked(&self.0)
            }
            fn set_batches_tracked(&mut self, steps: ::core::primitive::u64) {
                $crate::Model::set_batches_tracked(&mut self.0, steps)
            }
        }
    };
}

/// The training methods and the `Train` implementation of generated model `$name`.
#[doc(hidden)]
#[macro_export]
macro_rules! __train {
    ($name:ident) => {
        impl $name {
            /// Trains on `data` as the train block says (epochs, batches, validation
            /// split, schedule), printing a line per epoch.
            pub fn fit(
                &mut self,
                data: &$crate::rt::data::Dataset,
            ) -> ::core::result::Result<$crate::rt::fit::FitReport, $crate::Error> {
                $crate::rt::fit::fit(self, data, &Self::FIT)
            }

            /// Trains with another configuration, e.g. `model.fit_with(&data, &Net::FIT.quiet())`.
            pub fn fit_with(
                &mut self,
                data: &$crate::rt::data::Dataset,
                config: &$crate::rt::fit::FitConfig,
            ) -> ::core::result::Result<$crate::rt::fit::FitReport, $crate::Error> {
                $crate::rt::fit::fit(self, data, config)
            }

            /// Loss and accuracy on `data`, in inference mode.
            pub fn evaluate(
                &mut self,
                data: &$crate::rt::data::Dataset,
            ) -> ::core::result::Result<$crate::rt::fit::Evaluation, $crate::Error> {
                $crate::rt::fit::evaluate(self, data, Self::FIT.loss, Self::BATCH)
            }
        }

        impl $crate::Train for $name {
            fn gradients(
                &mut self,
                x: $crate::ndarray::ArrayViewD<'_, ::core::primitive::f32>,
                target: $crate::Target<'_>,
            ) -> ::core::result::Result<$crate::Gradients, $crate::Error> {
                $crate::Train::gradients(&mut self.0, x, target)
            }
            fn train_step(
                &mut self,
                x: $crate::ndarray::ArrayViewD<'_, ::core::primitive::f32>,
                target: $crate::Target<'_>,
            ) -> ::core::result::Result<::core::primitive::f32, $crate::Error> {
                $crate::Train::train_step(&mut self.0, x, target)
            }
            fn learning_rate(&self, epoch: ::core::primitive::usize) -> ::core::primitive::f32 {
                $crate::Train::learning_rate(&self.0, epoch)
            }
            fn set_epoch(&mut self, epoch: ::core::primitive::usize) {
                $crate::Train::set_epoch(&mut self.0, epoch)
            }
            fn set_epochs(&mut self, epochs: ::core::primitive::usize) {
                $crate::Train::set_epochs(&mut self.0, epochs)
            }
            fn min_train_batch(&self) -> ::core::primitive::usize {
                $crate::Train::min_train_batch(&self.0)
            }
            fn max_train_batch(&self) -> ::core::option::Option<::core::primitive::usize> {
                $crate::Train::max_train_batch(&self.0)
            }
            fn last_correct(&self) -> ::core::option::Option<::core::primitive::usize> {
                $crate::Train::last_correct(&self.0)
            }
        }

        impl $crate::rt::FlatTrain for $name {
            fn local_gradients(
                &mut self,
                x: $crate::ndarray::ArrayViewD<'_, ::core::primitive::f32>,
                target: $crate::Target<'_>,
            ) -> ::core::result::Result<::core::primitive::f32, $crate::Error> {
                $crate::rt::FlatTrain::local_gradients(&mut self.0, x, target)
            }
            fn flat_gradients(&mut self) -> &mut [::core::primitive::f32] {
                $crate::rt::FlatTrain::flat_gradients(&mut self.0)
            }
            fn flat_buffers(&mut self) -> &mut [::core::primitive::f32] {
                $crate::rt::FlatTrain::flat_buffers(&mut self.0)
            }
            fn apply_update(&mut self) -> ::core::result::Result<(), $crate::Error> {
                $crate::rt::FlatTrain::apply_update(&mut self.0)
            }
            fn optimizer_state(&mut self) -> $crate::rt::OptimizerState<'_> {
                $crate::rt::FlatTrain::optimizer_state(&mut self.0)
            }
        }
    };
}
