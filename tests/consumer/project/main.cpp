// A program outside the hcnn tree: it builds a small network, runs it and checks the result;
// built against the package's cuda component, it also asks the CUDA runtime for devices.
#include <hcnn/hcnn.hpp>
#ifdef CONSUMER_CUDA
#include <hcnn/backend/cuda.hpp>
#endif

#include <cmath>
#include <iostream>

int main() {
  using namespace hcnn;
  using Tiny = Net<Input<3, 16, 16>, Conv<8, 3, 1, 1>, MaxPool<2, 2>, FC<16>, Softmax<4>>;
  Model<Tiny> model(1);
  Tensor<float> x(2, Tiny::input_shape);
  x.fill(0.5f);
  const auto& p = model.forward(x);
  float total = 0;
  for (int k = 0; k < 4; ++k) total += p[k];
  if (std::abs(total - 1.0f) > 1e-5f) return 1;
  std::cout << "consumer: ok, " << param_count<Tiny>() << " parameters";
#ifdef CONSUMER_CUDA
  std::cout << ", " << cuda::device_count() << " CUDA device(s)";
#endif
  std::cout << "\n";
}
