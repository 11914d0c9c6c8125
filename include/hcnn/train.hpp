// hcnn/train.hpp — training: the SGD solver, learning-rate schedules, strategies, metrics,
// feature caches and banks, progress output and the Trainer. Brings in io.hpp (datasets,
// checkpoints).
#pragma once

#include "io.hpp"
#include "train/feature_bank.hpp"
#include "train/feature_cache.hpp"
#include "train/metrics.hpp"
#include "train/progress.hpp"
#include "train/schedule.hpp"
#include "train/sgd.hpp"
#include "train/strategy.hpp"
#include "train/trainer.hpp"
