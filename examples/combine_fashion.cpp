// hcnn_combine_fashion — the paper's three steps on Fashion-MNIST, in about a minute on 2 cores:
// (a) train a D-like and a VD-like (BatchNorm) base, (b) train [D,VD]+2CL on their frozen,
// cached features, (c) fine-tune into the bases' top layers; beside [D,VD]+avg.
//
//   hcnn_combine_fashion [--train N] [--epochs E] [--folder /usr/share/datasets/fashion-mnist]
//
// Prints one table row per model (top-1 / top-5 on the first 2,000 test images) and writes
// the Trainer's CSV logs to the working folder.
#include <hcnn/hcnn.hpp>

#include <cstdio>
#include <cstring>
#include <iostream>
#include <numeric>
#include <string>

using namespace hcnn;

using D = Net<Input<1, 28, 28>, Conv<32, 5, 1, 2>, MaxPool<3, 2>, LRN<5>, Conv<64, 5, 1, 2, 2>, MaxPool<3, 2>,
              FC<128>, Dropout<0.5f>, FC<128>, Dropout<0.5f>, Softmax<10>>;
using VD = Net<Input<1, 28, 28>, Conv<16, 3, 1, 1, 1, Identity>, BatchNorm<ReLU>, Conv<16, 3, 1, 1, 1, Identity>,
               BatchNorm<ReLU>, MaxPool<2, 2>, Conv<32, 3, 1, 1, 1, Identity>, BatchNorm<ReLU>,
               Conv<32, 3, 1, 1, 1, Identity>, BatchNorm<ReLU>, MaxPool<2, 2>, FC<128>, Dropout<0.5f>, FC<128>,
               Dropout<0.5f>, Softmax<10>>;
using Joint = Combination<D, VD, FC<128>, Softmax<10>>;

int main(int argc, char** argv) {
  std::size_t train_size = 6000;
  int epochs = 4;
  std::string folder = FashionMnist::debian_folder;
  for (int i = 1; i < argc; ++i) {
    const std::string arg = argv[i];
    if ((arg == "--train" || arg == "--epochs" || arg == "--folder") && i + 1 < argc) {
      const std::string value = argv[++i];
      if (arg == "--train") train_size = std::stoul(value);
      if (arg == "--epochs") epochs = std::stoi(value);
      if (arg == "--folder") folder = value;
    } else {
      std::cerr << "usage: hcnn_combine_fashion [--train N] [--epochs E] [--folder DIR]\n";
      return 2;
    }
  }
  try {
    const FashionMnist train_all(folder, true), test_all(folder, false);
    std::vector<std::size_t> train_idx(std::min(train_size, train_all.size())), test_idx(2000);
    std::iota(train_idx.begin(), train_idx.end(), 0);
    std::iota(test_idx.begin(), test_idx.end(), 0);
    const Subset<FashionMnist> train(train_all, train_idx), test(test_all, test_idx);
    const TrainOptions options{.batch_size = 64, .augment = false, .seed = 1};
    const auto steps = std::int64_t(epochs) * std::int64_t((train.size() + 63) / 64);
    auto with = [&](const char* log, std::int64_t warmup) {
      TrainOptions o = options;
      o.schedule = Schedule::warmup_cosine(warmup, steps);
      o.log_csv = log;
      return o;
    };
    auto row = [](const char* name, const Accuracy& a) {
      std::printf("%-28s top-1 %6.2f %%   top-5 %6.2f %%\n", name, 100 * a.top1, 100 * a.top5);
    };

    std::cout << "(a) pre-training the bases on " << train.size() << " images, " << epochs << " epochs\n";
    Model<D> d(1);
    Model<VD> vd(2);
    Trainer(d, Sgd{.lr = 0.02f}, strategy::whole_network, with("base_d.csv", 20)).fit(train, epochs);
    Trainer(vd, Sgd{.lr = 0.02f}, strategy::whole_network, with("base_vd.csv", 20)).fit(train, epochs);

    std::cout << "(b) training [D,VD]+2CL on the frozen bases' cached features\n";
    Model<Joint> joint(3);
    copy_parameters(d, joint.base<0>());
    copy_parameters(vd, joint.base<1>());
    Trainer(joint, Sgd{.lr = 0.01f}, strategy::combination_layers, with("joint_cl.csv", 0)).fit(train, epochs);
    const Accuracy after_b = evaluate(joint, test);

    std::cout << "(c) fine-tuning into the bases' top layers\n";
    Trainer(joint, Sgd{.lr = 0.002f}, strategy::base_top_layers, with("joint_ft.csv", 0)).fit(train, 1);

    Model<Average<D, VD>> average;
    copy_parameters(d, average.base<0>());
    copy_parameters(vd, average.base<1>());

    std::cout << "\ntest set: first " << test.size() << " Fashion-MNIST test images\n";
    row("D", evaluate(d, test));
    row("VD (BatchNorm)", evaluate(vd, test));
    row("[D,VD]+avg", evaluate(average, test));
    row("[D,VD]+2CL (softmax+fca)", after_b);
    row("[D,VD]+2CL + base top", evaluate(joint, test));
  } catch (const std::exception& e) {
    std::cerr << "hcnn_combine_fashion: " << e.what() << "\n";
    return 1;
  }
}
