//! The image folder, CIFAR-10 and CSV readers (src/rt/data/{folder,cifar,csv}.rs):
//! right values and labels from good files, and an error naming the file (and the
//! line and column for CSV) for each kind of bad input, or a counted skip.

use cnnc::rt::data::{
    cifar10, image_folder, image_folder_with_classes, read_classes, read_csv, save_classes, CsvOptions, FolderOptions,
    Header, Split, Targets, CIFAR10_RECORD,
};
use cnnc::Error;
use image::{GrayImage, ImageFormat, Luma, Rgb, RgbImage, Rgba, RgbaImage};
use std::path::{Path, PathBuf};

fn rgb(w: u32, h: u32, color: [u8; 3]) -> RgbImage {
    RgbImage::from_pixel(w, h, Rgb(color))
}

fn save(image: impl Into<image::DynamicImage>, path: &Path) {
    std::fs::create_dir_all(path.parent().unwrap()).unwrap();
    image.into().save(path).unwrap();
}

fn labels(t: &Targets) -> Vec<usize> {
    match t {
        Targets::Labels(l) => l.clone(),
        Targets::Values(_) | Targets::LabelMaps(_) => panic!("expected labels"),
    }
}

/// The message of an error, which must name `path`.
fn names(e: Error, path: &Path) -> String {
    let text = e.to_string();
    assert!(
        text.contains(&path.display().to_string()),
        "the error does not name {}: {text}",
        path.display()
    );
    text
}

/// cat: two red PNGs; dog: a blue JPEG and a gray PNG.
fn pets(dir: &Path) {
    save(rgb(8, 8, [255, 0, 0]), &dir.join("cat/a.png"));
    save(rgb(8, 8, [255, 0, 0]), &dir.join("cat/b.PNG"));
    save(rgb(8, 8, [0, 0, 255]), &dir.join("dog/c.jpg"));
    save(GrayImage::from_pixel(8, 8, Luma([128])), &dir.join("dog/d.png"));
}

#[test]
fn folder_reads_classes_labels_and_pixels() {
    let tmp = tempfile::tempdir().unwrap();
    pets(tmp.path());
    let f = image_folder(tmp.path(), &FolderOptions::new(3, 8, 8)).unwrap();
    assert_eq!(f.classes, ["cat", "dog"]);
    assert_eq!(f.data.inputs.shape(), &[4, 3, 8, 8]);
    assert_eq!(labels(&f.data.targets), [0, 0, 1, 1]);
    assert!(f.skipped.is_empty());
    assert_eq!(f.files[2].file_name().unwrap(), "c.jpg");
    let x = &f.data.inputs;
    // Red PNG: exact.
    assert_eq!((x[[0, 0, 3, 3]], x[[0, 1, 3, 3]], x[[0, 2, 3, 3]]), (1.0, 0.0, 0.0));
    // Blue JPEG: lossy but close.
    assert!(
        x[[2, 0, 0, 0]] < 0.05 && x[[2, 2, 7, 7]] > 0.95,
        "{:?}",
        x.slice(ndarray::s![2, .., 0, 0])
    );
    // Gray replicated into three channels.
    for c in 0..3 {
        assert_eq!(x[[3, c, 5, 1]], 128.0 / 255.0);
    }
    assert!(x.iter().all(|v| (0.0..=1.0).contains(v)));
}

#[test]
fn folder_converts_channels_and_sizes() {
    let tmp = tempfile::tempdir().unwrap();
    let d = tmp.path();
    // RGBA drops alpha, even a fully transparent pixel keeps its colour.
    save(
        RgbaImage::from_pixel(4, 4, Rgba([10, 20, 30, 0])),
        &d.join("a/rgba.png"),
    );
    // Gray stored as RGB is accepted for one channel.
    save(rgb(4, 4, [77, 77, 77]), &d.join("b/grayish.png"));
    let f = image_folder(d, &FolderOptions::new(3, 4, 4)).unwrap();
    assert_eq!(f.data.inputs[[0, 2, 0, 0]], 30.0 / 255.0);
    let gray = FolderOptions::new(1, 4, 4);
    // RGBA with colour cannot become one channel: named.
    let e = image_folder(d, &gray).unwrap_err();
    let text = names(e, &d.join("a/rgba.png"));
    assert!(text.contains("color") && text.contains("1 channel"), "{text}");
    std::fs::remove_dir_all(d.join("a")).unwrap();
    let f = image_folder(d, &gray).unwrap();
    assert_eq!(f.data.inputs.shape(), &[1, 1, 4, 4]);
    assert_eq!(f.data.inputs[[0, 0, 3, 3]], 77.0 / 255.0);

    // Another size is resized, or refused by the option.
    save(rgb(16, 12, [0, 255, 0]), &d.join("b/big.png"));
    let f = image_folder(d, &FolderOptions::new(3, 4, 4)).unwrap();
    assert_eq!(f.data.inputs.shape(), &[2, 3, 4, 4]);
    assert!(
        (f.data.inputs[[0, 1, 2, 2]] - 1.0).abs() < 1e-6,
        "a uniform image stays uniform"
    );
    let strict = FolderOptions {
        resize: false,
        ..FolderOptions::new(3, 4, 4)
    };
    let text = names(image_folder(d, &strict).unwrap_err(), &d.join("b/big.png"));
    assert!(text.contains("12x16") && text.contains("4x4"), "{text}");
    // Options that no image can meet.
    assert!(matches!(
        image_folder(d, &FolderOptions::new(2, 4, 4)),
        Err(Error::Config(_))
    ));
    assert!(FolderOptions::for_input(&[4, 8, 8]).is_err());
    assert!(FolderOptions::for_input(&[10]).is_err());
    assert_eq!(
        FolderOptions::for_input(&[1, 28, 28]).unwrap(),
        FolderOptions::new(1, 28, 28)
    );
}

#[test]
fn folder_bad_files_are_named_or_skipped_and_counted() {
    let tmp = tempfile::tempdir().unwrap();
    let d = tmp.path();
    pets(d);
    let opts = FolderOptions::new(3, 8, 8);
    let skip = FolderOptions {
        skip_bad: true,
        ..opts.clone()
    };
    let mut png = Vec::new();
    rgb(8, 8, [1, 2, 3])
        .write_to(&mut std::io::Cursor::new(&mut png), ImageFormat::Png)
        .unwrap();
    let cases: Vec<(PathBuf, Vec<u8>, &str)> = vec![
        (
            d.join("cat/noise.png"),
            b"certainly not an image".to_vec(),
            "PNG or JPEG",
        ),
        (d.join("cat/truncated.png"), png[..png.len() / 2].to_vec(), "decode"),
        (
            d.join("dog/fake.jpg"),
            b"GIF89a\x01\x00\x01\x00\x00\x00\x00;".to_vec(),
            "Gif",
        ),
        (d.join("dog/notes.txt"), b"hello".to_vec(), "not a PNG or JPEG"),
        (d.join("stray.png"), png.clone(), "one subfolder per class"),
    ];
    for (path, bytes, what) in &cases {
        std::fs::write(path, bytes).unwrap();
        let text = names(image_folder(d, &opts).unwrap_err(), path);
        assert!(text.contains(what), "{text}");
        let f = image_folder(d, &skip).unwrap();
        assert_eq!(f.skipped.len(), 1, "{:?}", f.skipped);
        assert_eq!(f.data.len(), 4, "the good images are all kept");
        assert_eq!(labels(&f.data.targets), [0, 0, 1, 1], "no label shifts");
        std::fs::remove_file(path).unwrap();
    }
    // A dangling link named like an image: the system's reason, and the name.
    #[cfg(unix)]
    {
        let link = d.join("cat/gone.png");
        std::os::unix::fs::symlink(d.join("nowhere.png"), &link).unwrap();
        let e = image_folder(d, &opts).unwrap_err();
        assert!(matches!(e, Error::Io { .. }), "{e}");
        names(e, &link);
        assert_eq!(image_folder(d, &skip).unwrap().skipped.len(), 1);
        std::fs::remove_file(&link).unwrap();
    }
    // A subfolder inside a class folder.
    std::fs::create_dir(d.join("cat/nested")).unwrap();
    names(image_folder(d, &opts).unwrap_err(), &d.join("cat/nested"));
    std::fs::remove_dir(d.join("cat/nested")).unwrap();
    // An empty class folder: an error, or a skip that keeps the class (and so the labels).
    std::fs::create_dir(d.join("cow")).unwrap();
    let text = names(image_folder(d, &opts).unwrap_err(), &d.join("cow"));
    assert!(text.contains("no PNG or JPEG"), "{text}");
    let f = image_folder(d, &skip).unwrap();
    assert_eq!((f.classes.len(), f.skipped.len(), f.data.len()), (3, 1, 4));
    // Hidden files are not images of any class.
    std::fs::write(d.join("cat/.DS_Store"), b"junk").unwrap();
    std::fs::remove_dir(d.join("cow")).unwrap();
    assert_eq!(image_folder(d, &opts).unwrap().data.len(), 4);
}

#[test]
fn folder_without_classes_or_images_is_an_error() {
    let tmp = tempfile::tempdir().unwrap();
    let d = tmp.path();
    let opts = FolderOptions::new(3, 8, 8);
    let text = names(image_folder(d, &opts).unwrap_err(), d);
    assert!(text.contains("no class folders"), "{text}");
    let missing = d.join("missing");
    assert!(matches!(image_folder(&missing, &opts), Err(Error::Io { .. })));
    names(image_folder(&missing, &opts).unwrap_err(), &missing);
    // Every file bad, skipping: nothing left is an error, not an empty data set.
    std::fs::create_dir(d.join("a")).unwrap();
    std::fs::write(d.join("a/x.png"), b"nope").unwrap();
    let skip = FolderOptions { skip_bad: true, ..opts };
    let text = names(image_folder(d, &skip).unwrap_err(), d);
    assert!(text.contains("no image could be read"), "{text}");
}

#[test]
fn test_split_uses_the_training_classes() {
    let tmp = tempfile::tempdir().unwrap();
    let train = tmp.path().join("train");
    let test = tmp.path().join("test");
    pets(&train);
    save(rgb(8, 8, [0, 0, 255]), &test.join("dog/x.png"));
    let opts = FolderOptions::new(3, 8, 8);
    let classes = image_folder(&train, &opts).unwrap().classes;
    let t = image_folder_with_classes(&test, &classes, &opts).unwrap();
    // `dog` is class 1 of the training set, though the only folder here.
    assert_eq!(labels(&t.data.targets), [1]);
    assert_eq!(t.classes, classes);
    save(rgb(8, 8, [0, 0, 255]), &test.join("emu/y.png"));
    let text = names(
        image_folder_with_classes(&test, &classes, &opts).unwrap_err(),
        &test.join("emu"),
    );
    assert!(text.contains("cat, dog"), "{text}");
}

#[test]
fn classes_are_saved_beside_the_weights_atomically() {
    let tmp = tempfile::tempdir().unwrap();
    let weights = tmp.path().join("model.safetensors");
    let classes: Vec<String> = ["cat", "dog", "sea lion"].map(String::from).to_vec();
    let path = save_classes(&weights, &classes).unwrap();
    assert_eq!(path, tmp.path().join("classes.txt"));
    assert_eq!(std::fs::read_to_string(&path).unwrap(), "cat\ndog\nsea lion\n");
    // The permissions of any file the user creates (not the temporary file's 0600).
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let plain = tmp.path().join("plain");
        std::fs::File::create(&plain).unwrap();
        let mode = |p: &Path| std::fs::metadata(p).unwrap().permissions().mode();
        assert_eq!(mode(&path), mode(&plain), "classes.txt {:o}", mode(&path));
        std::fs::remove_file(&plain).unwrap();
    }
    assert_eq!(read_classes(&path).unwrap(), classes);
    // Overwrites, and leaves no temporary file behind.
    save_classes(&weights, &classes[..2]).unwrap();
    assert_eq!(read_classes(&path).unwrap(), &classes[..2]);
    let files: Vec<_> = std::fs::read_dir(tmp.path()).unwrap().collect();
    assert_eq!(files.len(), 1);
    let bad = ["a\nb".to_string()];
    assert!(save_classes(&weights, &bad).is_err());
    assert!(save_classes(tmp.path().join("no/such/dir/w.safetensors"), &classes).is_err());
    std::fs::write(&path, "a\n\nb\n").unwrap();
    let text = names(read_classes(&path).unwrap_err(), &path);
    assert!(text.contains("line 2"), "{text}");
}

/// CIFAR-10 records: label, then 3072 pixel bytes from `pixel(record, index)`.
fn cifar_bytes(labels: &[u8], first: usize) -> Vec<u8> {
    let mut out = Vec::new();
    for (r, &l) in labels.iter().enumerate() {
        out.push(l);
        out.extend((0..3072).map(|i| ((first + r) * 7 + i) as u8));
    }
    out
}

#[test]
fn cifar_reads_records_and_checks_sizes() {
    let tmp = tempfile::tempdir().unwrap();
    let d = tmp.path().join("cifar-10-batches-bin");
    std::fs::create_dir(&d).unwrap();
    for b in 1..=5 {
        let first = (b - 1) * 2;
        std::fs::write(d.join(format!("data_batch_{b}.bin")), cifar_bytes(&[b as u8, 9], first)).unwrap();
    }
    std::fs::write(d.join("test_batch.bin"), cifar_bytes(&[3], 100)).unwrap();
    // The directory that holds cifar-10-batches-bin works as well as the folder itself.
    let train = cifar10(tmp.path(), Split::Train).unwrap();
    assert_eq!(train.inputs.shape(), &[10, 3, 32, 32]);
    assert_eq!(labels(&train.targets), [1, 9, 2, 9, 3, 9, 4, 9, 5, 9]);
    // Sample 3, channel 1 (green), row 2, column 5: byte 1024 + 2*32 + 5 of record 3.
    let i = 1024 + 2 * 32 + 5;
    assert_eq!(train.inputs[[3, 1, 2, 5]], ((3 * 7 + i) as u8) as f32 / 255.0);
    let test = cifar10(&d, Split::Test).unwrap();
    assert_eq!((test.len(), labels(&test.targets)), (1, vec![3]));

    // A size that is not a whole number of records names the file and its size.
    let bad = d.join("data_batch_3.bin");
    let mut bytes = cifar_bytes(&[1, 2], 0);
    bytes.extend_from_slice(&[0; 5]);
    std::fs::write(&bad, &bytes).unwrap();
    let text = names(cifar10(&d, Split::Train).unwrap_err(), &bad);
    assert!(text.contains(&format!("{} bytes", 2 * CIFAR10_RECORD + 5)), "{text}");
    std::fs::write(&bad, b"").unwrap();
    names(cifar10(&d, Split::Train).unwrap_err(), &bad);
    // A label past 9.
    std::fs::write(&bad, cifar_bytes(&[1, 10], 0)).unwrap();
    let text = names(cifar10(&d, Split::Train).unwrap_err(), &bad);
    assert!(text.contains("record 1") && text.contains("label 10"), "{text}");
    // A missing file.
    std::fs::remove_file(&bad).unwrap();
    let e = cifar10(&d, Split::Train).unwrap_err();
    assert!(matches!(e, Error::Io { .. }));
    names(e, &bad);
}

fn csv_file(dir: &Path, text: &str) -> PathBuf {
    let path = dir.join("data.csv");
    std::fs::write(&path, text).unwrap();
    path
}

#[test]
fn csv_reads_labels_values_and_headers() {
    let tmp = tempfile::tempdir().unwrap();
    let d = tmp.path();
    let class = CsvOptions::classification();
    let path = csv_file(d, "x1, x2 ,label\n1,2,0\n\n3.5,-4e-1,\"1\"\n");
    let data = read_csv(&path, &class).unwrap();
    assert_eq!(data.inputs.shape(), &[2, 2]);
    assert_eq!(data.inputs.as_slice().unwrap(), &[1.0, 2.0, 3.5, -0.4]);
    assert_eq!(labels(&data.targets), [0, 1]);
    // No header.
    let path = csv_file(d, "1,2,0\n3,4,2\n");
    assert_eq!(read_csv(&path, &class).unwrap().len(), 2);
    // A numeric header line, declared.
    let present = CsvOptions {
        header: Header::Present,
        ..class
    };
    assert_eq!(read_csv(&path, &present).unwrap().len(), 1);
    // Regression: values [N, 1].
    let path = csv_file(d, "a;b;y\n1;2;0.5\n3;4;-2\n");
    let reg = CsvOptions {
        delimiter: b';',
        ..CsvOptions::regression()
    };
    match read_csv(&path, &reg).unwrap().targets {
        Targets::Values(v) => assert_eq!((v.shape(), v.as_slice().unwrap()), (&[2, 1][..], &[0.5, -2.0][..])),
        Targets::Labels(_) | Targets::LabelMaps(_) => panic!("expected values"),
    }
}

/// v3: `images/` with `masks/` of the same names; each mask pixel's gray value is
/// its class, 255 void.
#[test]
fn segmentation_folders_pair_images_with_masks() {
    let tmp = tempfile::tempdir().unwrap();
    let d = tmp.path();
    for (name, class) in [("a", 1u8), ("b", 2)] {
        save(
            image::RgbImage::from_pixel(4, 3, image::Rgb([10, 20, 30])),
            &d.join(format!("images/{name}.png")),
        );
        let mut mask = image::GrayImage::from_pixel(4, 3, image::Luma([0]));
        mask.put_pixel(1, 2, image::Luma([class]));
        mask.put_pixel(3, 0, image::Luma([255]));
        save(mask, &d.join(format!("masks/{name}.png")));
    }
    assert!(cnnc::rt::data::is_segmentation_folder(d));
    let options = FolderOptions::new(3, 3, 4);
    let set = cnnc::rt::data::segmentation_folder(d, &options).unwrap();
    assert_eq!(set.classes, 3);
    assert_eq!(set.data.inputs.shape(), [2, 3, 3, 4]);
    let Targets::LabelMaps(maps) = &set.data.targets else {
        panic!("expected label maps")
    };
    assert_eq!(maps.shape(), [2, 3, 4]);
    assert_eq!(
        (maps[[0, 2, 1]], maps[[1, 2, 1]], maps[[1, 0, 3]], maps[[0, 0, 0]]),
        (1, 2, 255, 0)
    );

    // A mask with a color, a missing mask, a mask of another size: each names its file.
    save(
        image::RgbImage::from_pixel(4, 3, image::Rgb([1, 2, 3])),
        &d.join("masks/a.png"),
    );
    let e = cnnc::rt::data::segmentation_folder(d, &options)
        .unwrap_err()
        .to_string();
    assert!(e.contains("a.png") && e.contains("color"), "{e}");
    std::fs::remove_file(d.join("masks/a.png")).unwrap();
    let e = cnnc::rt::data::segmentation_folder(d, &options)
        .unwrap_err()
        .to_string();
    assert!(e.contains("a.png") && e.contains("no mask"), "{e}");
    save(
        image::GrayImage::from_pixel(5, 3, image::Luma([0])),
        &d.join("masks/a.png"),
    );
    let e = cnnc::rt::data::segmentation_folder(d, &options)
        .unwrap_err()
        .to_string();
    assert!(e.contains("a.png") && e.contains("the mask is 3x5"), "{e}");
}

/// A mask moves with its image: flips and crops map each label where they map
/// the picture's pixel, and padding gets the fill label.
#[test]
fn masks_are_augmented_with_their_images() {
    use cnnc::ir::Augment;
    let augs = [Augment::FlipHorizontal, Augment::Crop(2), Augment::FlipVertical];
    let (h, w) = (5, 7);
    let labels: Vec<usize> = (0..h * w).map(|i| i % 4 + 1).collect();
    let as_image: Vec<f32> = labels.iter().map(|&l| l as f32).collect();
    for index in 0..20 {
        let mut image = vec![0.0f32; h * w];
        let mut mask = vec![0usize; h * w];
        cnnc::rt::augment::augment_sample(&augs, (1, h, w), 3, 1, index, &as_image, &mut image);
        cnnc::rt::augment::augment_labels(&augs, (h, w), 3, 1, index, &labels, &mut mask, 0);
        let back: Vec<usize> = image.iter().map(|&v| v as usize).collect();
        assert_eq!(back, mask, "sample {index}");
    }
}

#[test]
fn csv_errors_name_the_file_line_and_column() {
    let tmp = tempfile::tempdir().unwrap();
    let d = tmp.path();
    let class = CsvOptions::classification();
    let cases: &[(&str, CsvOptions, &str)] = &[
        (
            "x,y,l\n1,2,0\n1,oops,1\n",
            class,
            "line 3, column 2: `oops` is not a number",
        ),
        ("1,2,0\n1,2\n", class, "line 2: 2 columns, but line 1 has 3"),
        ("1,2,0\n1,2,1.5\n", class, "line 2, column 3: label `1.5`"),
        ("1,2,-1\n", class, "line 1, column 3: label `-1`"),
        (
            "1,2,0\n1,inf,1\n",
            class,
            "line 2, column 2: inf is not a finite number",
        ),
        ("1,NaN,0\n", class, "line 1, column 2: NaN is not a finite number"),
        ("1,,0\n", class, "line 1, column 2: empty field"),
        (
            "1,two,0\n",
            class,
            "line 1, column 2: `two` is not a number, but other fields",
        ),
        ("", class, "no data lines"),
        ("x,y,label\n", class, "no data lines"),
        ("5\n6\n", class, "line 1: 1 column"),
        (
            "1,2,x\n",
            CsvOptions::regression(),
            "line 1, column 3: `x` is not a number",
        ),
    ];
    for (text, options, expected) in cases {
        let path = csv_file(d, text);
        let message = names(read_csv(&path, options).unwrap_err(), &path);
        assert!(message.contains(expected), "{text:?}: {message}");
    }
    let missing = d.join("missing.csv");
    assert!(matches!(read_csv(&missing, &class), Err(Error::Io { .. })));
    let path = d.join("bytes.csv");
    std::fs::write(&path, b"1,2,0\n1,\xff,0\n").unwrap();
    let message = names(read_csv(&path, &class).unwrap_err(), &path);
    assert!(message.contains("line 2, column 2"), "{message}");
}

#[test]
fn folder_reads_sixteen_bit_pngs() {
    let tmp = tempfile::tempdir().unwrap();
    let d = tmp.path();
    let deep: image::ImageBuffer<Luma<u16>, Vec<u16>> = image::ImageBuffer::from_pixel(4, 4, Luma([13107]));
    save(deep, &d.join("a/deep.png"));
    for channels in [1, 3] {
        let f = image_folder(d, &FolderOptions::new(channels, 4, 4)).unwrap();
        assert_eq!(f.data.inputs.shape(), &[1, channels, 4, 4]);
        assert!(
            f.data.inputs.iter().all(|&v| (v - 0.2).abs() < 1e-6),
            "{:?}",
            f.data.inputs
        );
    }
}
