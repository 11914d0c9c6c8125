// libFuzzer target: checkpoint loading (header, checksum, structure, solver state).
#include <hcnn/backend/cpu/conv.hpp>
#include <hcnn/backend/cpu/fc.hpp>
#include <hcnn/io/checkpoint.hpp>
#include <hcnn/model.hpp>

using Tiny = hcnn::Net<hcnn::Input<2, 6, 6>, hcnn::Conv<3, 3>, hcnn::FC<4>, hcnn::Softmax<3>>;

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  static hcnn::Model<Tiny> model(1);
  static hcnn::SgdSolver<float> solver;
  try {
    hcnn::load_checkpoint({reinterpret_cast<const std::byte*>(data), size}, "fuzz.ckpt", model, &solver);
  } catch (const hcnn::IoError&) {
  }
  return 0;
}
