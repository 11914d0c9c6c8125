// Images, image-folder datasets, splits, background batches and IDX files, on real data
// (../shared/data/caltech101, Debian's Fashion-MNIST) and on files made here, good and bad.
#include <catch2/catch.hpp>
#include <hcnn/hcnn.hpp>
#include <stb_image_write.h>

#include <fstream>
#include <set>

#include <sys/stat.h>

#include "temp_dir.hpp"

using namespace hcnn;
using hcnn::testing::TempDir;

namespace {

const std::filesystem::path caltech = HCNN_CALTECH_DIR;

// Writes a PNG with the given channel count (1 grey, 2 grey+alpha, 3 RGB, 4 RGBA).
void write_png(const std::filesystem::path& path, int w, int h, int channels, const std::vector<std::uint8_t>& pixels) {
  REQUIRE(stbi_write_png(path.c_str(), w, h, channels, pixels.data(), w * channels));
}

}  // namespace

TEST_CASE("Greyscale, grey+alpha and RGBA images become 3 channels", "[image]") {
  TempDir dir;
  write_png(dir / "grey.png", 2, 1, 1, {10, 200});
  write_png(dir / "grey_alpha.png", 2, 1, 2, {10, 0, 200, 255});
  write_png(dir / "rgba.png", 1, 1, 4, {1, 2, 3, 4});
  Image grey = load_image(dir / "grey.png");
  CHECK(grey.width == 2);
  CHECK(grey.rgb == std::vector<std::uint8_t>{10, 10, 10, 200, 200, 200});
  CHECK(load_image(dir / "grey_alpha.png").rgb == grey.rgb);
  CHECK(load_image(dir / "rgba.png").rgb == std::vector<std::uint8_t>{1, 2, 3});
}

TEST_CASE("Preprocessing: BGR, CHW, per-channel mean, mirror, centre and random crops", "[image]") {
  Image image{3, 2, {1, 2, 3, 4, 5, 6, 7, 8, 9,  //
                     11, 12, 13, 14, 15, 16, 17, 18, 19}};
  Preprocess p{.resize_to = 0, .crop = 2, .mean = {1, 2, 3}};
  std::vector<float> out(12);
  preprocess_into(image, p, out.data());
  // Centre crop of a 3x2 image: x = 0 (integer division), y = 0. Channel 0 is blue.
  CHECK(out == std::vector<float>{3 - 1, 6 - 1, 13 - 1, 16 - 1,  // B
                                  2 - 2, 5 - 2, 12 - 2, 15 - 2,  // G
                                  1 - 3, 4 - 3, 11 - 3, 14 - 3});
  p.mirror = true;
  Rng rng(1);
  std::set<float> first_values;
  for (int i = 0; i < 20; ++i) {
    preprocess_into(image, p, out.data(), &rng);
    first_values.insert(out[0]);
  }
  CHECK(first_values == std::set<float>{2, 5});  // flipped or not
  p.mirror = false;
  p.random_crop = true;
  first_values.clear();
  for (int i = 0; i < 20; ++i) {
    preprocess_into(image, p, out.data(), &rng);
    first_values.insert(out[0]);
  }
  CHECK(first_values == std::set<float>{2, 5});  // x = 0 or 1
  p.mean_image.assign(5, 0.0f);
  CHECK_THROWS_WITH(preprocess_into(image, p, out.data()), Catch::Contains("the mean image has 5 values, expected 3x2x2"));
  p = Preprocess{.resize_to = 0, .crop = 4};
  CHECK_THROWS_WITH(preprocess_into(image, p, out.data()), Catch::Contains("a 4 crop does not fit a 3x2 image"));
  // Shorter side to 4 keeps the aspect ratio: 3x2 becomes 6x4 (the message shows the resize).
  p = Preprocess{.resize_mode = Preprocess::Resize::shorter_side, .resize_to = 4, .crop = 5};
  CHECK_THROWS_WITH(preprocess_into(image, p, out.data()), Catch::Contains("a 5 crop does not fit a 6x4 image"));
  p = Preprocess{.resize_mode = Preprocess::Resize::exact, .resize_to = 4, .crop = 5};
  CHECK_THROWS_WITH(preprocess_into(image, p, out.data()), Catch::Contains("a 5 crop does not fit a 4x4 image"));
}

TEST_CASE("Caffe preprocessing of a real photograph", "[image][caltech]") {
  const auto path = caltech / "images" / "Faces" / "image_0001.jpg";
  const Image image = load_image(path);
  CHECK(image.width == 510);
  CHECK(image.height == 337);
  const Preprocess p = preprocess::caffe_imagenet();
  CHECK(p.shape() == Shape{3, 227, 227});
  std::vector<float> out(3 * 227 * 227);
  preprocess_into(image, p, out.data());
  // The centre crop's first pixel is the 256x256 resize's pixel (14, 14), BGR minus the mean.
  const Image sized = resize(image, 256, 256);
  const std::uint8_t* px = sized.pixel(14, 14);
  CHECK(out[0] == Approx(px[2] - 104.007f));
  CHECK(out[227 * 227] == Approx(px[1] - 116.669f));
  CHECK(out[2 * 227 * 227] == Approx(px[0] - 122.679f));
  // An image already 256x256 is not resized.
  const Image exact = resize(sized, 256, 256);
  CHECK(exact.rgb == sized.rgb);
  // A greyscale photograph decodes to three equal channels.
  const Image grey = load_image(caltech / "images" / "cup" / "image_0030.jpg");
  CHECK(grey.width == 300);
  CHECK((grey.rgb[0] == grey.rgb[1] && grey.rgb[1] == grey.rgb[2]));
}

TEST_CASE("Bad images give an IoError naming the file", "[image][errors]") {
  TempDir dir;
  write_png(dir / "ok.png", 4, 4, 3, std::vector<std::uint8_t>(48, 7));
  const auto png = testing::read_bytes(dir / "ok.png");
  auto expect = [&](const std::string& name, const std::vector<char>& bytes, const std::string& problem) {
    testing::write_bytes(dir / name, bytes);
    CHECK_THROWS_AS(load_image(dir / name), IoError);
    CHECK_THROWS_WITH(load_image(dir / name), Catch::Contains((dir / name).string()) && Catch::Contains(problem));
  };
  expect("empty.jpg", {}, "empty file");
  expect("noise.jpg", std::vector<char>(300, 'x'), "cannot decode the image");
  expect("truncated.png", {png.begin(), png.begin() + 40}, "corrupt or truncated PNG: 0 bytes of compressed data");
  expect("cut_chunk.png", {png.begin(), png.end() - 20}, "corrupt or truncated PNG");
  expect("portable.ppm", {'P', '6', '\n', '9', '9', '9', '9', '9', '9', '9', '9', '9', '9', ' ', '1', '\n'},
         "not a JPEG, PNG or BMP file");
  // A PNG whose header claims a zero width.
  auto zero = png;
  zero[16] = zero[17] = zero[18] = zero[19] = 0;
  expect("zero.png", zero, "cannot decode the image");
  // A header claiming (2^20 + 4) x (2^20 + 4) pixels is refused before any allocation.
  auto huge = png;
  huge[17] = huge[21] = 0x10;
  expect("huge.png", huge, "the image is too large (1048580x1048580; the limit is 67108864 pixels");
  // 20000 x 20000: stb's own limit would report "unknown image type".
  auto large = png;
  large[16] = large[20] = 0;
  large[17] = large[21] = 0;
  large[18] = large[22] = 0x4E;
  large[19] = large[23] = 0x20;
  expect("large.png", large, "the image is too large (20000x20000;");
  // Data stb cannot read and gives no reason for still gets one.
  CHECK(!io::stb_reason().empty());
  CHECK_THROWS_WITH(load_image(dir / "missing.jpg"), Catch::Contains("missing.jpg: cannot open: No such file"));
}

TEST_CASE("Decoding has a budget, checked against the header; short files are refused", "[image][errors]") {
  TempDir dir;
  std::vector<std::uint8_t> pixels(64 * 48 * 3);
  for (std::size_t i = 0; i < pixels.size(); ++i) pixels[i] = std::uint8_t(i * 7);
  REQUIRE(stbi_write_bmp((dir / "ok.bmp").c_str(), 64, 48, 3, pixels.data()));
  REQUIRE(stbi_write_jpg((dir / "ok.jpg").c_str(), 64, 48, 3, pixels.data(), 90));
  write_png(dir / "ok.png", 64, 48, 3, pixels);
  const auto bmp = testing::read_bytes(dir / "ok.bmp"), jpg = testing::read_bytes(dir / "ok.jpg"),
             png = testing::read_bytes(dir / "ok.png");
  auto decode = [](const std::vector<char>& bytes, const ImageLimits& limits = {}) {
    return decode_image({reinterpret_cast<const std::byte*>(bytes.data()), bytes.size()}, "photo", limits);
  };
  CHECK(decode(bmp).rgb == pixels);
  CHECK(decode(png).rgb == pixels);
  CHECK(decode(jpg).width == 64);
  auto put = [](std::vector<char>& bytes, std::size_t at, std::uint32_t value, bool big_endian) {
    for (std::size_t i = 0; i < 4; ++i) bytes[at + i] = char(value >> (8 * (big_endian ? 3 - i : i)));
  };
  const ImageLimits unlimited{.max_pixels = std::int64_t{1} << 40, .max_bytes = std::int64_t{1} << 50};

  // A 154-byte BMP that claims 11000 x 12000 pixels: over the pixel budget, and with the budget
  // raised, shorter than its rows (stb would decode the missing rows as zeros).
  auto claims = std::vector<char>(bmp.begin(), bmp.begin() + 154);
  put(claims, 18, 11000, false);
  put(claims, 22, 12000, false);
  CHECK_THROWS_WITH(decode(claims), Catch::Contains("photo: the image is too large (11000x12000; the limit is"));
  CHECK_THROWS_WITH(decode(claims, unlimited),
                    Catch::Contains("truncated BMP: the 11000x12000 pixels its header promises take 396000054 bytes, "
                                    "the file has 154"));
  CHECK_THROWS_WITH(decode({bmp.begin(), bmp.end() - 1}), Catch::Contains("truncated BMP"));

  // A 16-bit RGBA PNG header of 11584 x 11584 pixels: over the pixel budget, over the memory
  // budget with the pixels raised, and its data cannot hold it (DEFLATE expands at most 1032:1).
  auto deep = png;
  put(deep, 16, 11584, true);
  put(deep, 20, 11584, true);
  deep[24] = 16;
  deep[25] = 6;
  CHECK_THROWS_WITH(decode(deep), Catch::Contains("too large (11584x11584; the limit is 67108864 pixels"));
  CHECK_THROWS_WITH(decode(deep, {.max_pixels = std::int64_t{1} << 30}),
                    Catch::Contains("too large to decode (11584x11584, about 2815 MiB; the limit is 1024 MiB"));
  CHECK_THROWS_WITH(decode(deep, unlimited), Catch::Contains("corrupt or truncated PNG") &&
                                                 Catch::Contains("compressed data cannot hold the 11584x11584 pixels"));

  // JPEG: no end-of-image marker, or a header claiming more blocks than the data can hold.
  CHECK_THROWS_WITH(decode({jpg.begin(), jpg.end() - 2}), Catch::Contains("truncated JPEG: the data end before"));
  CHECK_THROWS_WITH(decode({jpg.begin(), jpg.begin() + long(jpg.size() / 2)}), Catch::Contains("truncated JPEG"));
  auto wide = jpg;
  for (std::size_t i = 2; i + 9 < wide.size(); ++i)
    if (std::uint8_t(wide[i]) == 0xFF && std::uint8_t(wide[i + 1]) == 0xC0) {  // baseline start of frame
      wide[i + 5] = wide[i + 7] = char(8000 >> 8);
      wide[i + 6] = wide[i + 8] = char(8000 & 255);
      break;
    }
  CHECK_THROWS_WITH(decode(wide), Catch::Contains("bytes cannot hold the 8000x8000 pixels its header promises"));

  // The budget can be lowered (and raised) by the caller, and reaches the datasets.
  CHECK_THROWS_WITH(decode(png, {.max_pixels = 1000}), Catch::Contains("the limit is 1000 pixels"));
  CHECK_THROWS_WITH(decode(png, {.max_bytes = 4096}), Catch::Contains("the limit is 4096 bytes, ImageLimits::max_bytes"));
  std::filesystem::create_directories(dir / "root" / "a");
  std::filesystem::copy_file(dir / "ok.png", dir / "root" / "a" / "ok.png");
  const ImageFolder folder(dir / "root", Preprocess{.resize_to = 0, .crop = 32}, {.max_pixels = 1000});
  std::vector<float> out(3 * 32 * 32);
  CHECK_THROWS_WITH(folder.load(0, out.data()), Catch::Contains("ok.png: the image is too large"));
  CHECK_THROWS_WITH(PreloadedImages({{dir / "ok.png", 0}}, 40, Preprocess{.crop = 32}, {.max_pixels = 1000}),
                    Catch::Contains("ok.png: the image is too large"));
  CHECK(PreloadedImages({{dir / "ok.png", 0}}, 40, Preprocess{.crop = 32}).size() == 1);
}

TEST_CASE("Images that broke stb_image under the fuzzer are refused cleanly", "[image][errors]") {
  // tests/fuzz/seeds/image holds the inputs fuzz_image found: JPEG Huffman tables with more than
  // 256 codes (an out-of-bounds write in Debian's stb), a scan using an undefined Huffman table
  // (reads of uninitialised tables) and PNG chunks claiming gigabytes.
  int found = 0;
  for (const auto& entry : std::filesystem::directory_iterator(HCNN_FUZZ_SEEDS_DIR "/image")) {
    const std::string name = entry.path().filename().string();
    if (!name.starts_with("jpeg_dht_overflow") && !name.starts_with("jpeg_undefined") &&
        !name.starts_with("png_huge_chunk") && !name.starts_with("png_ihdr_overflows"))
      continue;
    INFO(name);
    CHECK_THROWS_WITH(load_image(entry.path()),
                      Catch::Contains(name) && (Catch::Contains("Huffman table declares") || Catch::Contains("never defined") ||
                                                Catch::Contains("runs past the end") ||
                                                Catch::Contains("too large (4294967295x4278190088;")));
    ++found;
  }
  CHECK(found >= 8);
}

TEST_CASE("ImageFolder reads Caltech-101: classes, counts, a seeded split", "[dataset][caltech]") {
  const ImageFolder data(caltech / "images", preprocess::caffe_imagenet());
  CHECK(data.classes().size() == 101);
  CHECK(data.size() == 8677);
  CHECK(data.classes().front() == "Faces");  // sorted: capitals first
  auto [train, test] = data.split_per_class(30, 7);
  CHECK(train.size() == 101 * 30);
  CHECK(test.size() == 8677 - 101 * 30);
  std::vector<std::size_t> all = train.indices();
  all.insert(all.end(), test.indices().begin(), test.indices().end());
  std::sort(all.begin(), all.end());
  CHECK(std::adjacent_find(all.begin(), all.end()) == all.end());  // disjoint
  CHECK(all.size() == data.size());
  auto [again, unused] = data.split_per_class(30, 7);
  CHECK(again.indices() == train.indices());
  auto [other, unused2] = data.split_per_class(30, 8);
  CHECK(other.indices() != train.indices());
  std::vector<int> per_class(101, 0);
  for (std::size_t i = 0; i < train.size(); ++i) ++per_class[std::size_t(train.label(i))];
  CHECK(std::all_of(per_class.begin(), per_class.end(), [](int n) { return n == 30; }));
}

TEST_CASE("PreloadedImages serve what ImageFolder decodes, from memory", "[dataset][caltech]") {
  Preprocess p{.resize_mode = Preprocess::Resize::shorter_side, .resize_to = 72, .crop = 64, .random_crop = true,
               .mirror = true, .mean = {100, 110, 120}, .scale = 0.02f};
  const ImageFolder folder(caltech / "images", p);
  std::vector<LabeledImage> chosen;
  for (std::size_t i : {std::size_t{0}, std::size_t{1234}, std::size_t{5000}, folder.size() - 1})
    chosen.push_back({folder.path(i), folder.label(i)});
  const PreloadedImages preloaded(chosen, 72, p);
  REQUIRE(preloaded.size() == 4);
  CHECK(preloaded.shape() == Shape{3, 64, 64});
  std::vector<float> expected(3 * 64 * 64), got(expected.size());
  for (std::size_t i = 0; i < chosen.size(); ++i) {
    CHECK(preloaded.label(i) == chosen[i].label);
    // The centre 64 of the stored centre 72 is the centre 64 of the resized photograph.
    preprocess_into(load_image(chosen[i].path), p, expected.data());
    preloaded.load(i, got.data());
    CHECK(got == expected);
  }
  // Augmentation crops within the stored square: random crops differ from the centre.
  Rng rng(5, 1);
  bool differs = false;
  for (int t = 0; t < 8 && !differs; ++t) {
    preloaded.load(0, got.data(), &rng);
    preprocess_into(load_image(chosen[0].path), p, expected.data());
    differs = got != expected;
  }
  CHECK(differs);
}

TEST_CASE("PreloadedImages refuse a bad image and a crop that does not fit", "[dataset][errors]") {
  TempDir dir;
  const auto bad = dir.path() / "bad.jpg";
  std::ofstream(bad) << "not a JPEG";
  const Preprocess p{.crop = 64};
  CHECK_THROWS_WITH(PreloadedImages({{caltech / "images/Faces/image_0001.jpg", 0}, {bad, 1}}, 72, p),
                    Catch::Contains("bad.jpg") && Catch::Contains("not a JPEG, PNG or BMP"));
  CHECK_THROWS_AS(PreloadedImages({{caltech / "images/Faces/image_0001.jpg", 0}}, 48, p), ShapeError);
}

TEST_CASE("Every Caltech-101 photograph decodes and preprocesses", "[dataset][caltech][slow]") {
  // 8,677 JPEGs of sizes from 80 to 3999 px, 411 of them greyscale, through the background
  // loader at the scaled experiment's 72 -> 64 preprocessing.
  const ImageFolder data(caltech / "images", Preprocess{.resize_to = 72, .crop = 64});
  BatchLoader loader(data, {.batch_size = 256});
  std::size_t seen = 0;
  double sum = 0;
  for (Batch batch; loader.next(batch);) {
    seen += static_cast<std::size_t>(batch.inputs.batch());
    for (std::size_t i = 0; i < batch.inputs.size(); i += 97) sum += batch.inputs[i];
  }
  CHECK(seen == 8677);
  CHECK(sum / (8677.0 * 3 * 64 * 64 / 97) == Approx(110).margin(40));  // mean pixel value, roughly
}

TEST_CASE("A FIFO, a folder or a symlink loop is refused with an IoError, without blocking", "[dataset][errors]") {
  TempDir dir;
  const auto fifo = dir.path() / "photo.jpg";
  REQUIRE(::mkfifo(fifo.c_str(), 0600) == 0);
  CHECK_THROWS_WITH(load_image(fifo), Catch::Contains("photo.jpg: not a regular file"));
  CHECK_THROWS_WITH(load_image(dir.path()), Catch::Contains("is a folder, not a file"));
  CHECK_THROWS_WITH(load_image(""), Catch::StartsWith("(empty path): "));
  const auto root = dir.path() / "images";
  std::filesystem::create_directories(root / "cats");
  std::filesystem::copy_file(caltech / "images/Faces/image_0001.jpg", root / "cats/1.jpg");
  std::filesystem::create_symlink("loop", root / "loop");  // points at itself
  CHECK_THROWS_WITH(ImageFolder(root, Preprocess{}), Catch::Contains("Too many levels of symbolic links"));
  CHECK_THROWS_AS(ImageFolder(root, Preprocess{}), IoError);
  CHECK_THROWS_WITH(ImageFolder(root, Preprocess{}), Catch::Contains("loop"));
}

TEST_CASE("BatchLoader builds batches in the background, shuffled per epoch", "[dataset][caltech]") {
  ImageFolder data(caltech / "images", Preprocess{.resize_to = 72, .crop = 64, .random_crop = true, .mirror = true});
  auto [train, rest] = data.split_per_class(2, 3);  // 202 images
  BatchLoader loader(train, {.batch_size = 64, .shuffle = true, .augment = true, .seed = 5});
  CHECK(loader.batches_per_epoch() == 4);
  Batch batch;
  std::vector<int> labels;
  int batches = 0;
  while (loader.next(batch)) {
    CHECK(batch.inputs.shape() == Shape{3, 64, 64});
    labels.insert(labels.end(), batch.labels.begin(), batch.labels.end());
    ++batches;
  }
  CHECK(batches == 4);
  CHECK(batch.inputs.batch() == 202 - 3 * 64);
  std::vector<int> sorted = labels;
  std::sort(sorted.begin(), sorted.end());
  std::vector<int> expected;
  for (int c = 0; c < 101; ++c) expected.insert(expected.end(), {c, c});
  CHECK(sorted == expected);  // every sample once
  std::vector<int> second;
  while (loader.next(batch)) second.insert(second.end(), batch.labels.begin(), batch.labels.end());
  CHECK(second.size() == labels.size());
  CHECK(second != labels);  // a new order
}

TEST_CASE("Dataset errors: missing folders, empty classes, a corrupt image in a batch", "[dataset][errors]") {
  TempDir dir;
  CHECK_THROWS_WITH(ImageFolder(dir / "absent", {}), Catch::Contains("absent: no such folder"));
  testing::write_bytes(dir / "file", {'x'});
  CHECK_THROWS_WITH(ImageFolder(dir / "file", {}), Catch::Contains("not a folder"));
  std::filesystem::create_directory(dir / "root");
  CHECK_THROWS_WITH(ImageFolder(dir / "root", {}), Catch::Contains("has no class folders"));
  std::filesystem::create_directory(dir / "root" / "cats");
  std::filesystem::create_directory(dir / "root" / "dogs");
  write_png(dir / "root" / "cats" / "a.png", 8, 8, 3, std::vector<std::uint8_t>(192, 100));
  testing::write_bytes(dir / "root" / "dogs" / "notes.txt", {'x'});
  CHECK_THROWS_WITH(ImageFolder(dir / "root", {}), Catch::Contains("dogs: class folder holds no images"));
  testing::write_bytes(dir / "root" / "dogs" / "b.JPG", std::vector<char>(50, 'z'));
  const ImageFolder data(dir / "root", Preprocess{.resize_to = 0, .crop = 4});
  CHECK(data.size() == 2);
  BatchLoader loader(data, {.batch_size = 2});
  Batch batch;
  CHECK_THROWS_WITH(loader.next(batch), Catch::Contains("b.JPG") && Catch::Contains("cannot decode"));
  // The rest of the epoch is not dropped silently: the loader keeps reporting the file.
  CHECK_THROWS_WITH(loader.next(batch), Catch::Contains("b.JPG"));
  CHECK_THROWS_WITH(loader.next(batch), Catch::Contains("b.JPG"));
}

TEST_CASE("IDX files: Fashion-MNIST from Debian's package, and bad files", "[idx]") {
  const FashionMnist test_set(FashionMnist::debian_folder, false);
  CHECK(test_set.size() == 10000);
  CHECK(test_set.shape() == Shape{1, 28, 28});
  std::vector<int> counts(10, 0);
  for (std::size_t i = 0; i < test_set.size(); ++i) ++counts[std::size_t(test_set.label(i))];
  CHECK(std::all_of(counts.begin(), counts.end(), [](int n) { return n == 1000; }));
  std::vector<float> image(784);
  test_set.load(0, image.data());
  CHECK(*std::max_element(image.begin(), image.end()) <= 1.0f);
  CHECK(*std::max_element(image.begin(), image.end()) > 0.5f);

  TempDir dir;
  auto expect = [&](const std::vector<char>& bytes, const std::string& problem) {
    testing::write_bytes(dir / "bad-idx", bytes);
    CHECK_THROWS_WITH(read_idx(dir / "bad-idx"), Catch::Contains((dir / "bad-idx").string()) && Catch::Contains(problem));
  };
  testing::write_bytes(dir / "good-idx", {0x00, 0x00, 0x08, 0x01, 0, 0, 0, 3, 1, 2, 3});
  CHECK(read_idx(dir / "good-idx").values == std::vector<std::uint8_t>{1, 2, 3});
  expect({0x00, 0x01, 0x08, 0x01, 0, 0, 0, 3, 1, 2, 3}, "wrong magic number");
  expect({0x00, 0x00, 0x0D, 0x01, 0, 0, 0, 1, 1, 2, 3, 4}, "value type");
  expect({0x00, 0x00, 0x08, 0x01, 0, 0, 0, 9, 1, 2, 3}, "announces 9 values, the file holds 3");
  expect({0x00, 0x00, 0x08, 0x02, 0, 0}, "header truncated");
  expect({}, "wrong magic number");
  const auto gz = testing::read_bytes(std::filesystem::path(FashionMnist::debian_folder) / "t10k-labels-idx1-ubyte.gz");
  expect({gz.begin(), gz.begin() + static_cast<long>(gz.size() / 2)}, "gzip");
  auto flipped = gz;
  flipped[gz.size() / 2] ^= 0x01;
  expect(flipped, "gzip");
  auto bad_crc = gz;
  bad_crc[gz.size() - 8] ^= 0x01;  // the trailer's CRC-32
  expect(bad_crc, "gzip: checksum mismatch");
  auto bomb = gz;  // a trailer claiming 4 GB: refused before anything that size is allocated
  std::fill(bomb.end() - 4, bomb.end(), char(0xFF));
  expect(bomb, "its trailer claims 4294967295 bytes, more than");
  auto short_claim = gz;
  short_claim[gz.size() - 4] = 0;
  short_claim[gz.size() - 3] = short_claim[gz.size() - 2] = short_claim[gz.size() - 1] = 0;
  expect(short_claim, "inflate past the length in its trailer");
  expect({gz.begin(), gz.end() - 12}, "gzip");
  CHECK_THROWS_WITH(FashionMnist(dir.path()), Catch::Contains("no such file"));
}
