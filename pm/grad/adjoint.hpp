#pragma once
// Differentiable PM: reverse-mode gradients of a scalar loss of the final particles with respect
// to the white noise, the cosmological parameters and the parameters of force corrections, by
// the adjoint method of pmwd (Li et al. 2022, arXiv:2211.09958). One header for the pieces:
//   parameters.hpp   the named parameter vector and what is differentiable
//   power_model.hpp  P(k) as a function of the parameters
//   diff_config.hpp  the model's fixed configuration, force corrections
//   lpt_model.hpp    noise -> LPT particles, and its adjoint
//   trajectory.hpp   the schedule's kicks and drifts, and their reverse
//   diff_pm.hpp      the whole model: forward() and gradient()
//   losses.hpp       particle and field (chi^2) losses
#include "pm/grad/diff_config.hpp"
#include "pm/grad/diff_pm.hpp"
#include "pm/grad/losses.hpp"
#include "pm/grad/lpt_model.hpp"
#include "pm/grad/parameters.hpp"
#include "pm/grad/power_model.hpp"
#include "pm/grad/trajectory.hpp"
#include "pm/grad/trajectory_loss.hpp"
