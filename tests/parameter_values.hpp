// Every parameter value of a model, in order: to compare models, or a model before and after.
#pragma once

#include <vector>

namespace hcnn::testing {

template <class M>
std::vector<typename M::value_type> parameter_values(M& model) {
  std::vector<typename M::value_type> all;
  for (auto& p : model.parameters()) all.insert(all.end(), p.param->value.begin(), p.param->value.end());
  return all;
}

}  // namespace hcnn::testing
