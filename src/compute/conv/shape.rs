//! The sizes of one convolution: what every algorithm of the `conv` folder reads.
//! The algorithms (`blocked`, `winograd`, the paths in `mod.rs`) import it from
//! here, and `mod.rs` chooses among them ([`ConvShape::plan`]), so no file of the
//! folder imports another back.

/// Every size a convolution needs; the generated code passes it as a constant.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ConvShape {
    /// Input channels, height, width.
    pub c: usize,
    pub h: usize,
    pub w: usize,
    /// Filters (output channels).
    pub f: usize,
    /// Kernel taps per axis.
    pub kh: usize,
    pub kw: usize,
    /// Strides.
    pub sh: usize,
    pub sw: usize,
    /// Padding: top, bottom, left, right.
    pub pt: usize,
    pub pb: usize,
    pub pl: usize,
    pub pr: usize,
    /// Output height and width.
    pub oh: usize,
    pub ow: usize,
    /// Dilation (the spacing of the taps) per axis; 1 is a plain convolution.
    pub dh: usize,
    pub dw: usize,
    /// Groups: input and output channels split into `g` independent convolutions
    /// (`c` and `f` are multiples of `g`).
    pub g: usize,
}

impl ConvShape {
    pub const fn hp(&self) -> usize {
        self.h + self.pt + self.pb
    }
    pub const fn wp(&self) -> usize {
        self.w + self.pl + self.pr
    }
    pub const fn input_len(&self) -> usize {
        self.c * self.h * self.w
    }
    pub const fn output_len(&self) -> usize {
        self.f * self.oh * self.ow
    }
    /// Input channels per group.
    pub const fn cg(&self) -> usize {
        self.c / self.g
    }
    /// Filters per group.
    pub const fn fg(&self) -> usize {
        self.f / self.g
    }
    pub const fn weight_len(&self) -> usize {
        self.f * self.depth()
    }
    pub const fn padded(&self) -> bool {
        self.pt + self.pb + self.pl + self.pr > 0
    }
    /// One filter's weights, the rows of a group's unfolded input: C/G·KH·KW.
    pub const fn depth(&self) -> usize {
        self.cg() * self.kh * self.kw
    }
    /// Output positions per channel: OH·OW.
    pub const fn positions(&self) -> usize {
        self.oh * self.ow
    }
    /// 1x1, stride 1, unpadded: the input is its own unfolded matrix.
    pub const fn pointwise(&self) -> bool {
        self.kh == 1 && self.kw == 1 && self.sh == 1 && self.sw == 1 && !self.padded()
    }
    /// One channel per group and a whole number of filters per channel. A single
    /// input channel (`c == 1`, LeNet's first layer) stays with the other paths: its
    /// weight gradient as a product measured faster than direct loops.
    pub const fn depthwise(&self) -> bool {
        self.g == self.c && self.c > 1 && self.f.is_multiple_of(self.c)
    }
    /// One padded sample.
    pub const fn padded_sample_len(&self) -> usize {
        self.c * self.hp() * self.wp()
    }
    /// One padded channel.
    pub const fn padded_channel_len(&self) -> usize {
        self.hp() * self.wp()
    }
    /// Strided along either axis.
    pub const fn strided(&self) -> bool {
        self.sh > 1 || self.sw > 1
    }
    /// Where padded column `j` sits in a row of the direct paths' padded copy
    /// (`runs::pad`). With a column stride `sw > 1` the copy keeps the columns of
    /// each residue mod `sw` together (for stride 2: the even columns, then the odd
    /// ones), so a tap's inputs for consecutive output columns are consecutive
    /// floats and a row kernel loads them as vectors, as at stride 1.
    pub const fn padded_column(&self, j: usize) -> usize {
        let (residue, wp) = (j % self.sw, self.wp());
        let mut start = 0;
        let mut q = 0;
        while q < residue {
            // The columns q, q + sw, ... of a padded row.
            start += (wp - q).div_ceil(self.sw);
            q += 1;
        }
        start + j / self.sw
    }
    /// The offset of kernel tap `t` (`kh * KW + kw`) in a padded channel, from
    /// the input under an output row's first column.
    pub const fn tap_offset(&self, t: usize) -> usize {
        t / self.kw * self.dh * self.wp() + self.padded_column(t % self.kw * self.dw)
    }
    /// The problem whose forward pass is this one's data gradient (unit strides):
    /// channels and filters swap, the output gradient is padded by the window's
    /// extent minus the original padding.
    pub const fn transposed(&self) -> ConvShape {
        let (eh, ew) = (self.dh * (self.kh - 1), self.dw * (self.kw - 1));
        ConvShape {
            c: self.f,
            h: self.oh,
            w: self.ow,
            f: self.c,
            kh: self.kh,
            kw: self.kw,
            sh: 1,
            sw: 1,
            pt: eh.saturating_sub(self.pt),
            pb: eh.saturating_sub(self.pb),
            pl: ew.saturating_sub(self.pl),
            pr: ew.saturating_sub(self.pr),
            oh: self.h,
            ow: self.w,
            dh: self.dh,
            dw: self.dw,
            g: self.g,
        }
    }
}
