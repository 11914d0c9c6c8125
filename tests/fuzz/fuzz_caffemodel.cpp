// libFuzzer target: the .caffemodel parser and the import's shape matching, on arbitrary bytes.
// (Only the headers it needs: clang before 18 cannot compile float template arguments, as in
// LRN<5, 1e-4f> and Dropout<0.5f>, so the fuzzers avoid those layers.)
#include <hcnn/backend/cpu/conv.hpp>
#include <hcnn/backend/cpu/fc.hpp>
#include <hcnn/backend/cpu/pool.hpp>
#include <hcnn/io/caffemodel.hpp>
#include <hcnn/model.hpp>

// The small_net of the seed files, less its LRN (conv1 pool1 conv2 pool2 fc3 fc4 by name).
using Small = hcnn::Net<hcnn::Input<3, 15, 14>, hcnn::Conv<8, 5, 2, 1>, hcnn::MaxPool<3, 2>, hcnn::Conv<6, 3, 1, 1, 2>,
                        hcnn::AvgPool<3, 2, 1>, hcnn::FC<10>, hcnn::Softmax<5>>;

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  static hcnn::Model<Small> model(1);
  try {
    const hcnn::CaffeModel file({reinterpret_cast<const std::byte*>(data), size}, "fuzz.caffemodel");
    hcnn::import_caffemodel(model, file);
  } catch (const hcnn::IoError&) {
  }
  return 0;
}
