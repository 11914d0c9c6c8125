// Import of Caffe .caffemodel weights: both layer forms, every blob encoding, exactness against
// PyTorch's outputs for the same weights, and every kind of bad file.
#include <catch2/catch.hpp>
#include <hcnn/hcnn.hpp>

#include "fixture.hpp"
#include "parameter_values.hpp"
#include "temp_dir.hpp"

using namespace hcnn;
using hcnn::testing::Fixture;
using hcnn::testing::TempDir;

namespace {

// The network of tests/fixtures/generate.py's small_net, with Caffe's default names
// conv1 pool1 norm1 conv2 pool2 fc3 fc4.
using Small = Net<Input<3, 15, 14>, Conv<8, 5, 2, 1>, MaxPool<3, 2>, LRN<5>, Conv<6, 3, 1, 1, 2>, AvgPool<3, 2, 1>,
                  FC<10>, Softmax<5>>;
const std::string fixtures = HCNN_FIXTURES_DIR;

}  // namespace

TEST_CASE("A .caffemodel in either layer form loads exactly and reproduces PyTorch", "[caffemodel]") {
  const Fixture f("small_net");
  const auto form = GENERATE(as<std::string>{}, "v1", "v2");
  INFO("form " << form);
  const CaffeModel file(fixtures + "/small_net_" + form + ".caffemodel");
  CHECK(file.name() == "small_net");
  CHECK(file.layers().size() >= 9);  // including data, ReLU/softmax and loss layers to skip
  Model<Small> model(1);
  import_caffemodel(model, file);
  for (auto& [layer, param] : model.parameters()) {
    const auto& expected = f[layer + (param->name == "weight" ? "_w" : "_b")].data;
    REQUIRE(param->size() == expected.size());
    for (std::size_t i = 0; i < expected.size(); ++i) REQUIRE(param->value[i] == static_cast<float>(expected[i]));
  }
  Tensor<float> x(4, Small::input_shape);
  std::copy(f["x"].data.begin(), f["x"].data.end(), x.data());
  const auto& p = model.forward(x);
  for (std::size_t i = 0; i < p.size(); ++i) CHECK(p[i] == Approx(f["p"].data[i]).epsilon(1e-5));
}

TEST_CASE("Import by an explicit list of names, skipping layers", "[caffemodel]") {
  // Another network whose layers have other names: map them explicitly; "" keeps a layer.
  using Renamed = Net<Input<3, 15, 14>, Conv<8, 5, 2, 1>, MaxPool<3, 2>, LRN<5>, Conv<6, 3, 1, 1, 2>,
                      AvgPool<3, 2, 1>, FC<10>, Softmax<7>>;
  Model<Renamed> model(3);
  const auto classifier_before = model.parameters()[6].param->value[0];
  const std::vector<std::string> names{"conv1", "", "", "conv2", "", "fc3", ""};
  import_caffemodel(model, fixtures + "/small_net_v1.caffemodel", names);
  const Fixture f("small_net");
  CHECK(model.parameters()[0].param->value[0] == static_cast<float>(f["conv1_w"].data[0]));
  CHECK(model.parameters()[4].param->value[0] == static_cast<float>(f["fc3_w"].data[0]));
  CHECK(model.parameters()[6].param->value[0] == classifier_before);
  CHECK_THROWS_WITH(import_caffemodel(model, fixtures + "/small_net_v1.caffemodel", std::vector<std::string>{"conv1"}),
                    Catch::Contains("1 layer names given for a network of 7 layers"));
}

TEST_CASE("A shape mismatch names the layer and both shapes and leaves the model unchanged", "[caffemodel][errors]") {
  using Wider = Net<Input<3, 15, 14>, Conv<8, 5, 2, 1>, MaxPool<3, 2>, LRN<5>, Conv<6, 3, 1, 1, 2>, AvgPool<3, 2, 1>,
                    FC<11>, Softmax<5>>;
  Model<Wider> model(2);
  const auto before = testing::parameter_values(model);
  for (const char* form : {"v1", "v2"}) {
    const std::string path = fixtures + "/small_net_" + std::string(form) + ".caffemodel";
    CHECK_THROWS_WITH(import_caffemodel(model, path),
                      Catch::Contains(path) && Catch::Contains("layer 'fc3' (FC) weight has shape") &&
                          Catch::Contains("10, 24)") && Catch::Contains("the model's is (1, 1, 11, 24)"));
  }
  CHECK(testing::parameter_values(model) == before);  // conv1 and conv2 matched, but nothing was written

  using Renamed = Net<Input<3, 15, 14>, Conv<8, 5, 2, 1>, FC<5>>;  // conv1, fc2: no fc2 in the file
  Model<Renamed> other(2);
  CHECK_THROWS_WITH(import_caffemodel(other, fixtures + "/small_net_v2.caffemodel"),
                    Catch::Contains("has no layer 'fc2' (FC) that the model needs"));
}

TEST_CASE("Bad .caffemodel files give an IoError naming the file and the problem", "[caffemodel][errors]") {
  TempDir dir;
  const auto good = testing::read_bytes(fixtures + "/small_net_v1.caffemodel");
  Model<Small> model(1);
  const auto before = testing::parameter_values(model);
  auto expect_error = [&](const std::vector<char>& bytes, const std::string& problem) {
    const auto path = dir / "bad.caffemodel";
    testing::write_bytes(path, bytes);
    CHECK_THROWS_AS(import_caffemodel(model, path), IoError);
    CHECK_THROWS_WITH(import_caffemodel(model, path), Catch::Contains(path.string()) && Catch::Contains(problem));
  };

  SECTION("missing") {
    CHECK_THROWS_WITH(import_caffemodel(model, dir / "absent.caffemodel"),
                      Catch::Contains("absent.caffemodel") && Catch::Contains("No such file"));
  }
  SECTION("a directory") { CHECK_THROWS_WITH(CaffeModel(dir.path()), Catch::Contains("is a folder, not a file")); }
  SECTION("empty") { expect_error({}, "empty file"); }
  SECTION("truncated anywhere") {
    // Every cut either breaks the wire format or leaves a layer the model needs missing.
    for (std::size_t cut = 1; cut < good.size(); cut += 37) {
      INFO("cut at " << cut);
      const auto path = dir / "cut.caffemodel";
      testing::write_bytes(path, {good.begin(), good.begin() + static_cast<long>(cut)});
      CHECK_THROWS_AS(import_caffemodel(model, path), IoError);
    }
    expect_error({good.begin(), good.end() - 3}, "truncated");
  }
  SECTION("a length far past the end") {
    // NetParameter field 2 (a V1 layer) claiming 2^40 bytes.
    std::vector<char> bytes{0x12, char(0x80), char(0x80), char(0x80), char(0x80), char(0x80), 0x20, 0x01, 0x02};
    expect_error(bytes, "runs past the end");
  }
  SECTION("a varint that never ends") { expect_error(std::vector<char>(16, char(0xFF)), "varint"); }
  SECTION("random bytes") {
    Rng rng(5);
    for (int trial = 0; trial < 50; ++trial) {
      std::vector<char> bytes(1 + rng.below(400));
      for (auto& b : bytes) b = static_cast<char>(rng.below(256));
      const auto path = dir / "random.caffemodel";
      testing::write_bytes(path, bytes);
      CHECK_THROWS_AS(import_caffemodel(model, path), IoError);
    }
  }
  SECTION("an element count that disagrees with the shape") {
    auto bytes = good;
    // The first blob's legacy num (conv1: 8 filters) becomes 9.
    const std::string needle{0x08, 0x08, 0x10, 0x03, 0x18, 0x05, 0x20, 0x05};
    const auto at = std::search(bytes.begin(), bytes.end(), needle.begin(), needle.end());
    REQUIRE(at != bytes.end());
    *(at + 1) = 0x09;
    expect_error(bytes, "has shape (9, 3, 5, 5) (675 values) but holds 600 values");
  }
  CHECK(testing::parameter_values(model) == before);
}

TEST_CASE("export_caffemodel writes a V2 file that imports back exactly", "[caffemodel]") {
  TempDir dir;
  Model<Small> original(21), copy(22);
  export_caffemodel(original, dir / "exported.caffemodel");
  const CaffeModel file(dir / "exported.caffemodel");
  REQUIRE(file.layers().size() == 4);
  CHECK(file.layers()[0].name == "conv1");
  CHECK(file.layers()[0].type == "Convolution");
  CHECK(file.layers()[0].blobs[0].shape == std::vector<std::int64_t>{8, 3, 5, 5});
  CHECK(file.layers()[3].blobs[0].shape == std::vector<std::int64_t>{5, 10});
  import_caffemodel(copy, file);
  CHECK(testing::parameter_values(copy) == testing::parameter_values(original));
}

TEST_CASE("BatchNorm layers export as Caffe's BatchNorm + Scale pair and import back", "[caffemodel][batchnorm]") {
  TempDir dir;
  using WithBN = Net<Input<2, 6, 6>, Conv<3, 3, 1, 1, 1, Identity>, BatchNorm<ReLU>, FC<4>, Softmax<3>>;
  Model<WithBN> source(3);
  Tensor<float> x(4, WithBN::input_shape);
  Rng rng(2);
  for (std::size_t i = 0; i < x.size(); ++i) x[i] = float(rng.normal());
  source.forward(x, Mode::train);  // moving statistics that are not the initial zeros
  export_caffemodel(source, dir / "bn.caffemodel");
  const CaffeModel file(dir / "bn.caffemodel");
  REQUIRE(file.find("bn1") != nullptr);
  CHECK(file.find("bn1")->type == "BatchNorm");
  CHECK(file.find("bn1")->blobs.size() == 3);
  REQUIRE(file.find("bn1_scale") != nullptr);
  CHECK(file.find("bn1_scale")->type == "Scale");
  Model<WithBN> target(9);
  import_caffemodel(target, file);
  CHECK(testing::parameter_values(target) == testing::parameter_values(source));
  CHECK(target.parameters()[2].param->value[0] != 0.0f);  // bn1.mean came across
}
