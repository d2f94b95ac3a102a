"""Functions written the way JAX RL code writes them (purejaxrl's ``_calculate_gae``, rlax's
``vtrace_td_error_and_advantage``), each correct and with one classic slip: what the JAX
layouts are tested on. Written fresh for these tests in those libraries' signatures and
conventions (purejaxrl at 146b485, rlax at 0c61fbd), not copied from them."""

import jax
import jax.numpy as jnp

TRACED = []  # the (shape, dtype) of every trace of traced_purejaxrl_gae: one per compilation


def _gae(reward, value, done, last_val, gamma, gae_lambda, reset=True):
    """Reverse scan over time-major [T, N]: the carry is (gae, value of the next step)."""
    def step(carry, transition):
        gae, next_value = carry
        done_t, value_t, reward_t = transition
        alive = 1 - done_t
        delta = reward_t + gamma * next_value * alive - value_t
        gae = delta + gamma * gae_lambda * (alive if reset else 1) * gae
        return (gae, value_t), gae

    _, advantages = jax.lax.scan(step, (jnp.zeros_like(last_val), last_val),
                                 (done, value, reward), reverse=True, unroll=16)
    return advantages, advantages + value


@jax.jit
def purejaxrl_gae(reward, value, done, last_val, gamma, gae_lambda):
    return _gae(reward, value, done, last_val, gamma, gae_lambda)


@jax.jit
def purejaxrl_gae_carry_not_reset(reward, value, done, last_val, gamma, gae_lambda):
    """The classic slip: the bootstrap is cut at a done, the carried advantage is not."""
    return _gae(reward, value, done, last_val, gamma, gae_lambda, reset=False)


def _traced(reward, value, done, last_val, gamma, gae_lambda):
    TRACED.append((reward.shape, str(reward.dtype)))  # runs once per trace, not per call
    return _gae(reward, value, done, last_val, gamma, gae_lambda)


traced_purejaxrl_gae = jax.jit(_traced)


def _vtrace(v_tm1, v_t, r_t, discount_t, rho_tm1, lambda_, clip_rho, clip_pg_rho, boot):
    c = lambda_ * jnp.minimum(1.0, rho_tm1)
    delta = jnp.minimum(clip_rho, rho_tm1) * (r_t + discount_t * v_t - v_tm1)

    def step(acc, x):
        d, disc, c_t = x
        acc = d + disc * c_t * acc
        return acc, acc

    _, errors = jax.lax.scan(step, jnp.zeros_like(v_tm1[0]), (delta, discount_t, c),
                             reverse=True)
    vs = v_tm1 + errors
    if boot == "rlax":  # rlax's own mixture λ·vs_{t+1} + (1 − λ)·V_{t+1}
        q_boot = jnp.concatenate([lambda_ * vs[1:] + (1 - lambda_) * v_tm1[1:], v_t[-1:]])
    elif boot == "impala":  # IMPALA's vs_{t+1} (SPEC's): rlax's only at λ = 1
        q_boot = jnp.concatenate([vs[1:], v_t[-1:]])
    else:  # the slip: the one-step bootstrap from the values
        q_boot = v_t
    q = r_t + discount_t * q_boot
    return errors, jnp.minimum(clip_pg_rho, rho_tm1) * (q - v_tm1), q


@jax.jit
def rlax_vtrace(v_tm1, v_t, r_t, discount_t, rho_tm1, lambda_=1.0, clip_rho_threshold=1.0,
                clip_pg_rho_threshold=1.0):
    return _vtrace(v_tm1, v_t, r_t, discount_t, rho_tm1, lambda_, clip_rho_threshold,
                   clip_pg_rho_threshold, "rlax")


@jax.jit
def rlax_vtrace_pg_from_values(v_tm1, v_t, r_t, discount_t, rho_tm1, lambda_=1.0,
                               clip_rho_threshold=1.0, clip_pg_rho_threshold=1.0):
    return _vtrace(v_tm1, v_t, r_t, discount_t, rho_tm1, lambda_, clip_rho_threshold,
                   clip_pg_rho_threshold, "values")


@jax.jit
def impala_vtrace(v_tm1, v_t, r_t, discount_t, rho_tm1, lambda_=1.0, clip_rho_threshold=1.0,
                  clip_pg_rho_threshold=1.0):
    return _vtrace(v_tm1, v_t, r_t, discount_t, rho_tm1, lambda_, clip_rho_threshold,
                   clip_pg_rho_threshold, "impala")


@jax.jit
def td_errors(rewards, values, next_values, *, gamma, terminated=None):
    """SPEC §2's td_errors in jax.numpy ([..., T]): checked with the ``jax`` convention; a
    terminal step's bootstrap is selected away (a NaN there does not leak)."""
    bootstrap = gamma * next_values
    if terminated is not None:
        bootstrap = jnp.where(terminated, 0.0, bootstrap)
    return rewards + bootstrap - values


def _dtypes_seen(rewards, values, next_values, *, gamma, terminated=None):
    """Records the dtype JAX hands it (at each trace): float64 must stay float64."""
    SEEN.add(str(rewards.dtype))
    return td_errors(rewards, values, next_values, gamma=gamma, terminated=terminated)


SEEN = set()
dtypes_seen = jax.jit(_dtypes_seen)
