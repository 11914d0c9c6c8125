// Checkpoints: exact resume of model and solver, architecture mismatches, corrupt files, and
// atomic saves that never destroy the previous checkpoint.
#include <catch2/catch.hpp>
#include <hcnn/hcnn.hpp>

#include <csignal>
#include <cstring>
#include <fstream>
#include <limits>
#include <sys/resource.h>
#include <sys/wait.h>
#include <unistd.h>

#include "parameter_values.hpp"
#include "temp_dir.hpp"

using namespace hcnn;
using hcnn::testing::TempDir;

namespace {

using Tiny = Net<Input<3, 12, 12>, Conv<6, 3, 1, 1>, MaxPool<2, 2>, FC<16>, Dropout<0.5f>, Softmax<4>>;

struct FixedBatch {
  Tensor<float> x{6, Tiny::input_shape};
  std::vector<int> labels{0, 1, 2, 3, 0, 1};
  FixedBatch() {
    Rng rng(8);
    for (std::size_t i = 0; i < x.size(); ++i) x[i] = float(rng.normal());
  }
};

void train(Model<Tiny>& model, SgdSolver<float>& solver, const FixedBatch& batch, int steps) {
  for (int s = 0; s < steps; ++s) {
    model.forward(batch.x, Mode::test);  // test mode: deterministic across the resume
    model.backward(batch.labels);
    solver.step(model.parameters());
  }
}

}  // namespace

TEST_CASE("A checkpoint resumes training exactly, momentum included", "[checkpoint]") {
  TempDir dir;
  const FixedBatch batch;
  Model<Tiny> straight(4), resumed(99);
  SgdSolver<float> solver_a(Sgd{.lr = 0.05f}), solver_b(Sgd{.lr = 0.5f});
  train(straight, solver_a, batch, 3);
  save_checkpoint(dir / "run.ckpt", straight, &solver_a, 3);
  train(straight, solver_a, batch, 3);

  const CheckpointInfo info = load_checkpoint(dir / "run.ckpt", resumed, &solver_b);
  CHECK(info.iteration == 3);
  CHECK(info.has_solver);
  CHECK(solver_b.config().lr == 0.05f);
  train(resumed, solver_b, batch, 3);
  CHECK(testing::parameter_values(resumed) == testing::parameter_values(straight));  // bit for bit
  for (const auto& entry : std::filesystem::directory_iterator(dir.path()))
    CHECK(entry.path().filename().string().find(".tmp") == std::string::npos);
}

TEST_CASE("A version-2 checkpoint loads; its dropout streams, of the old generator, are not applied", "[checkpoint]") {
  TempDir dir;
  Model<Tiny> saved(4), loaded(9);
  const FixedBatch batch;
  saved.forward(batch.x, Mode::train);  // the dropout stream moves on
  save_checkpoint(dir / "v3.ckpt", saved, nullptr, 1);
  auto bytes = testing::read_bytes(dir / "v3.ckpt");
  REQUIRE(bytes[8] == 3);
  bytes[8] = 2;  // the version is outside the checksummed payload; the layouts agree
  testing::write_bytes(dir / "v2.ckpt", bytes);

  const auto own = loaded.random_streams()[0].stream->state();
  load_checkpoint(dir / "v2.ckpt", loaded);
  CHECK(testing::parameter_values(loaded) == testing::parameter_values(saved));
  CHECK(loaded.random_streams()[0].stream->state() == own);
  load_checkpoint(dir / "v3.ckpt", loaded);
  CHECK(loaded.random_streams()[0].stream->state() == saved.random_streams()[0].stream->state());
  CHECK(loaded.random_streams()[0].stream->step == 1);
}

TEST_CASE("Loading another architecture names the first mismatched layer and both shapes", "[checkpoint][errors]") {
  TempDir dir;
  Model<Tiny> model(1);
  save_checkpoint(dir / "tiny.ckpt", model);
  using Wider = Net<Input<3, 12, 12>, Conv<6, 3, 1, 1>, MaxPool<2, 2>, FC<20>, Dropout<0.5f>, Softmax<4>>;
  Model<Wider> other(2);
  const auto before = testing::parameter_values(other);
  CHECK_THROWS_WITH(load_checkpoint(dir / "tiny.ckpt", other),
                    Catch::Contains("tiny.ckpt") && Catch::Contains("another architecture") &&
                        Catch::Contains("layer 'fc2' weight (16, 216)") &&
                        Catch::Contains("the model's is layer 'fc2' weight (20, 216)"));
  CHECK(testing::parameter_values(other) == before);
  using Deeper = Net<Input<3, 12, 12>, Conv<6, 3, 1, 1>, MaxPool<2, 2>, FC<16>, FC<16>, Softmax<4>>;
  Model<Deeper> deeper(2);
  CHECK_THROWS_WITH(load_checkpoint(dir / "tiny.ckpt", deeper), Catch::Contains("another architecture"));
  Model<Tiny, Cpu, double> wide_type(1);
  CHECK_THROWS_WITH(load_checkpoint(dir / "tiny.ckpt", wide_type), Catch::Contains("holds 32-bit values"));
}

TEST_CASE("Corrupt, truncated, empty and missing checkpoints are refused", "[checkpoint][errors]") {
  TempDir dir;
  Model<Tiny> model(1);
  SgdSolver<float> solver;
  solver.step(model.parameters());
  save_checkpoint(dir / "good.ckpt", model, &solver, 7);
  const auto good = testing::read_bytes(dir / "good.ckpt");
  Model<Tiny> target(5);
  const auto before = testing::parameter_values(target);
  auto expect = [&](const std::vector<char>& bytes, const std::string& problem) {
    testing::write_bytes(dir / "bad.ckpt", bytes);
    CHECK_THROWS_AS(load_checkpoint(dir / "bad.ckpt", target), IoError);
    CHECK_THROWS_WITH(load_checkpoint(dir / "bad.ckpt", target),
                      Catch::Contains((dir / "bad.ckpt").string()) && Catch::Contains(problem));
  };
  expect({}, "not an hcnn checkpoint");
  expect({good.begin(), good.begin() + 10}, "not an hcnn checkpoint");
  for (std::size_t cut : {std::size_t{20}, good.size() / 3, good.size() - 1}) {
    INFO("cut at " << cut);
    expect({good.begin(), good.begin() + static_cast<long>(cut)}, "checksum mismatch");
  }
  auto flipped = good;
  flipped[good.size() / 2] ^= 0x10;
  expect(flipped, "checksum mismatch");
  auto future = good;
  future[8] = 4;
  expect(future, "format version 4");
  Rng rng(3);
  std::vector<char> noise(good.size());
  for (auto& b : noise) b = static_cast<char>(rng.below(256));
  expect(noise, "not an hcnn checkpoint");
  CHECK_THROWS_WITH(load_checkpoint(dir / "absent.ckpt", target),
                    Catch::Contains("absent.ckpt") && Catch::Contains("No such file"));
  CHECK(testing::parameter_values(target) == before);
}

TEST_CASE("A failed save leaves the previous checkpoint intact and no temporary file", "[checkpoint][errors]") {
  TempDir dir;
  Model<Tiny> model(1);
  save_checkpoint(dir / "keep.ckpt", model, nullptr, 1);
  const auto previous = testing::read_bytes(dir / "keep.ckpt");

  SECTION("the disk fills up during the save") {
    // In a child process, cap the file size so that the write fails half-way (EFBIG, as a full
    // disk gives ENOSPC); the child reports whether save_checkpoint threw an IoError.
    const pid_t child = fork();
    REQUIRE(child >= 0);
    if (child == 0) {
      std::signal(SIGXFSZ, SIG_IGN);
      rlimit limit{1024, 1024};
      setrlimit(RLIMIT_FSIZE, &limit);
      try {
        save_checkpoint(dir / "keep.ckpt", model, nullptr, 2);
      } catch (const IoError& e) {
        _exit(std::string(e.what()).find("keep.ckpt") != std::string::npos ? 0 : 2);
      }
      _exit(1);
    }
    int status = 0;
    waitpid(child, &status, 0);
    REQUIRE(WIFEXITED(status));
    CHECK(WEXITSTATUS(status) == 0);
  }
  SECTION("the folder does not exist") {
    CHECK_THROWS_WITH(save_checkpoint(dir / "no" / "such" / "dir.ckpt", model),
                      Catch::Contains("dir.ckpt") && Catch::Contains("cannot create a file"));
  }
  SECTION("the folder cannot be written to") {
    // A read-only folder (root ignores permission bits, so /proc stands in for it then).
    const auto locked = dir / "locked";
    std::filesystem::create_directory(locked);
    std::filesystem::permissions(locked, std::filesystem::perms::owner_read | std::filesystem::perms::owner_exec);
    const auto target = ::access(locked.c_str(), W_OK) == 0 ? std::filesystem::path("/proc/hcnn.ckpt") : locked / "x.ckpt";
    CHECK_THROWS_WITH(save_checkpoint(target, model), Catch::Contains(target.string()) && Catch::Contains("cannot create"));
  }
  CHECK(testing::read_bytes(dir / "keep.ckpt") == previous);
  Model<Tiny> reloaded(9);
  CHECK(load_checkpoint(dir / "keep.ckpt", reloaded).iteration == 1);
  for (const auto& entry : std::filesystem::directory_iterator(dir.path()))
    CHECK(entry.path().filename().string().find(".tmp") == std::string::npos);
}

TEST_CASE("A save removes the temporaries of killed writers, never a live writer's", "[checkpoint][errors]") {
  TempDir dir;
  Model<Tiny> model(1);
  // A child killed by SIGXFSZ in the middle of its save leaves its temporary behind.
  const pid_t child = fork();
  REQUIRE(child >= 0);
  if (child == 0) {
    rlimit limit{1024, 1024};
    setrlimit(RLIMIT_FSIZE, &limit);
    save_checkpoint(dir / "run.ckpt", model, nullptr, 2);
    _exit(0);
  }
  int status = 0;
  waitpid(child, &status, 0);
  REQUIRE(WIFSIGNALED(status));
  auto temporaries = [&] {
    std::vector<std::string> names;
    for (const auto& entry : std::filesystem::directory_iterator(dir.path()))
      if (entry.path().filename().string().find(".tmp-") != std::string::npos) names.push_back(entry.path().filename());
    return names;
  };
  REQUIRE(temporaries().size() == 1);
  // One "of" a live process (this one's parent) must stay: it may be writing right now.
  const std::string live = ".run.ckpt.tmp-" + std::to_string(::getppid()) + "-0";
  std::ofstream(dir / live) << "in progress";
  save_checkpoint(dir / "run.ckpt", model, nullptr, 3);
  CHECK(temporaries() == std::vector<std::string>{live});
  CHECK(load_checkpoint(dir / "run.ckpt", model).iteration == 3);
  CHECK_THROWS_WITH(save_checkpoint("", model), Catch::StartsWith("(empty path): "));
}

TEST_CASE("A checkpoint records its architecture and metadata, and refuses another architecture", "[checkpoint]") {
  TempDir dir;
  Model<Tiny> model(1);
  save_checkpoint(dir / "meta.ckpt", model, nullptr,
                  CheckpointInfo{.iteration = 5, .epoch = 2, .metadata = {{"classes", "a\nb\nc\nd"}, {"note", ""}}});
  const CheckpointInfo info = read_checkpoint_info(dir / "meta.ckpt");
  CHECK(info.iteration == 5);
  CHECK(info.epoch == 2);
  CHECK(info.architecture == architecture<Tiny>());
  CHECK_THAT(info.architecture, Catch::StartsWith("3x12x12 | conv1 Conv<6> 3x3 pad 1 +ReLU | pool1 MaxPool 2x2/2"));
  CHECK(info.metadata == std::map<std::string, std::string>{{"classes", "a\nb\nc\nd"}, {"note", ""}});

  // The same blobs, another dropout rate: only the architecture tells them apart.
  using OtherDropout = Net<Input<3, 12, 12>, Conv<6, 3, 1, 1>, MaxPool<2, 2>, FC<16>, Dropout<0.3f>, Softmax<4>>;
  Model<OtherDropout> other(2);
  const auto before = testing::parameter_values(other);
  CHECK_THROWS_WITH(load_checkpoint(dir / "meta.ckpt", other),
                    Catch::Contains("meta.ckpt: was saved from another architecture: 'drop2 Dropout p 0.5' where the "
                                    "model has 'drop2 Dropout p 0.3'"));
  CHECK(testing::parameter_values(other) == before);
}

TEST_CASE("Preprocessing round-trips through its text form", "[data]") {
  const Preprocess p{.resize_mode = Preprocess::Resize::shorter_side, .resize_to = 72, .crop = 64, .bgr = false,
                     .mean = {120.5f, 115.25f, 100}, .scale = 1.0f / 64};
  const Preprocess q = parse_preprocess(to_string(p));
  CHECK(q.resize_mode == p.resize_mode);
  CHECK(q.resize_to == 72);
  CHECK(q.crop == 64);
  CHECK_FALSE(q.bgr);
  CHECK(q.mean == p.mean);
  CHECK(q.scale == p.scale);
  CHECK(to_string(preprocess::caffe_imagenet()) == "resize=exact:256 crop=227 bgr=1 mean=104.007004,116.668999,122.679001 scale=1");
  CHECK_THROWS_WITH(parse_preprocess("crop=64"), Catch::Contains("is not a preprocessing"));
  CHECK_THROWS_WITH(parse_preprocess("resize=exact:256 crop=227 bgr=1 mean=nan,1,1 scale=1"),
                    Catch::Contains("is not a preprocessing"));
}

TEST_CASE("Non-finite parameters are refused by save, load, export and import, naming the blob", "[checkpoint][errors]") {
  TempDir dir;
  Model<Tiny> model(1);
  auto params = model.parameters();
  const std::string layer = params[2].layer;  // the FC layer's weight
  REQUIRE(params[2].param->name == "weight");
  const std::string blob = "layer '" + layer + "' weight";
  constexpr float marker = 12345.678f;  // found in the file's bytes, then made NaN there
  auto poison = [&](std::vector<char> bytes) {
    std::size_t found = 0;
    for (std::size_t i = 0; i + 4 <= bytes.size(); ++i)
      if (std::memcmp(bytes.data() + i, &marker, 4) == 0) {
        const float nan = std::numeric_limits<float>::quiet_NaN();
        std::memcpy(bytes.data() + i, &nan, 4);
        ++found;
      }
    REQUIRE(found == 1);
    return bytes;
  };

  // Writing: nothing is written.
  params[2].param->value[17] = std::numeric_limits<float>::quiet_NaN();
  CHECK_THROWS_AS(save_checkpoint(dir / "nan.ckpt", model), NumericError);
  CHECK_THROWS_WITH(save_checkpoint(dir / "nan.ckpt", model), Catch::Contains("nan.ckpt: not saved: " + blob + " holds nan at index 17"));
  CHECK_THROWS_WITH(export_caffemodel(model, dir / "nan.caffemodel"), Catch::Contains(blob + " holds nan at index 17"));
  CHECK(!std::filesystem::exists(dir / "nan.ckpt"));
  CHECK(!std::filesystem::exists(dir / "nan.caffemodel"));
  params[2].param->value[17] = -std::numeric_limits<float>::infinity();
  CHECK_THROWS_WITH(save_checkpoint(dir / "nan.ckpt", model), Catch::Contains("holds -inf at index 17"));

  // Reading: a file made non-finite behind hcnn's back (the checksum made right again) loads nothing.
  params[2].param->value[17] = marker;
  save_checkpoint(dir / "marked.ckpt", model);
  export_caffemodel(model, dir / "marked.caffemodel");
  auto checkpoint = poison(testing::read_bytes(dir / "marked.ckpt"));
  constexpr std::size_t header = 12;
  const std::uint32_t crc = io::crc32(std::as_bytes(std::span(checkpoint)).subspan(header, checkpoint.size() - header - 4));
  std::memcpy(checkpoint.data() + checkpoint.size() - 4, &crc, 4);
  testing::write_bytes(dir / "nan.ckpt", checkpoint);
  testing::write_bytes(dir / "nan.caffemodel", poison(testing::read_bytes(dir / "marked.caffemodel")));
  Model<Tiny> target(5);
  const auto before = testing::parameter_values(target);
  CHECK_THROWS_WITH(load_checkpoint(dir / "nan.ckpt", target),
                    Catch::Contains("nan.ckpt: " + blob + " holds nan at index 17: the checkpoint holds a diverged"));
  CHECK_THROWS_WITH(import_caffemodel(target, dir / "nan.caffemodel"),
                    Catch::Contains("nan.caffemodel: layer '" + layer + "' (FC) weight holds nan at index 17"));
  CHECK(testing::parameter_values(target) == before);
  load_checkpoint(dir / "marked.ckpt", target);  // the unpoisoned files load
  import_caffemodel(target, dir / "marked.caffemodel");
}
