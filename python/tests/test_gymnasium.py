"""Gymnasium conventions: registered ids, spec and metadata, v5's info terms, state access, copies
and v5's constructor keywords (issue 28, part 1)."""
import copy
import pickle
import subprocess
import sys

import numpy as np
import pytest

import mbmpo

gym = pytest.importorskip("gymnasium")

IDS = ["mbmpo/HalfCheetah-v5", "mbmpo/Hopper-v5", "mbmpo/Walker2d-v5", "mbmpo/Ant-v5", "mbmpo/Swimmer-v5",
       "mbmpo/InvertedPendulum-v5"]


@pytest.mark.parametrize("env_id", IDS)
def test_registered_ids_make_envs_with_spec_and_render_fps(env_id):
    env = gym.make(env_id)
    assert env.spec.id == env_id and env.spec.max_episode_steps == 1000
    assert env.metadata["render_fps"] == round(1 / env.unwrapped._env.dt)
    obs, info = env.reset(seed=0)
    assert obs.shape == env.observation_space.shape and isinstance(info, dict)
    _, reward, _, _, info = env.step(env.action_space.sample())
    terms = sum(v for k, v in info.items() if k.startswith("reward_"))
    assert terms == pytest.approx(reward, abs=1e-9), info


def test_make_vec_and_the_module_prefixed_id_without_an_import():
    envs = gym.make_vec("mbmpo/Hopper-v5", num_envs=3, vectorization_mode="sync")
    assert envs.reset(seed=0)[0].shape == (3, 11)
    code = "import gymnasium; e = gymnasium.make('mbmpo:mbmpo/Swimmer-v5'); print(e.reset(seed=1)[0].shape)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "(8,)"


def test_info_carries_v5s_reward_terms():
    env = mbmpo.Env("ant", seed=2)
    env.reset()
    _, reward, _, _, info = env.step(np.full(8, 0.5, np.float32))
    assert set(info) == {"x_position", "x_velocity", "reward_forward", "reward_ctrl", "reward_contact", "reward_survive"}
    assert info["reward_ctrl"] == pytest.approx(-0.5 * 8 * 0.25)
    assert info["reward_forward"] == info["x_velocity"]
    assert sum(v for k, v in info.items() if k.startswith("reward_")) == pytest.approx(reward, abs=1e-9)


def test_state_access_as_mujoco_env():
    env = mbmpo.Env("hopper", seed=4)
    env.reset()
    for _ in range(5):
        env.step(np.full(3, 0.3, np.float32))
    qpos, qvel = env.get_state()
    assert qpos.dtype == np.float64 and qpos.shape == (6,) and qvel.shape == (6,)
    assert np.array_equal(env.state_vector(), np.concatenate([qpos, qvel]))
    # set_state then a step equals a fresh env put in the same state.
    other = mbmpo.Env("hopper", seed=9)
    other.reset()
    obs = other.set_state(qpos, qvel)
    assert np.array_equal(obs[:5], qpos[1:].astype(np.float32))
    a = env.set_state(qpos, qvel)
    assert np.array_equal(a, obs)
    assert np.array_equal(env.step(np.zeros(3, np.float32))[0], other.step(np.zeros(3, np.float32))[0])
    for bad, name in [((qpos[:-1], qvel), "qpos"), ((qpos, np.full(6, np.nan)), "qvel")]:
        with pytest.raises(ValueError, match=name):
            env.set_state(*bad)


@pytest.mark.parametrize("how", ["pickle", "deepcopy", "gym deepcopy"])
def test_a_copy_steps_exactly_as_the_original(how):
    env = gym.make("mbmpo/Walker2d-v5").unwrapped if how == "gym deepcopy" else mbmpo.Env("walker2d", seed=5)
    env.reset(seed=5)
    rng = np.random.default_rng(0)
    for _ in range(7):
        env.step(rng.uniform(-1, 1, 6).astype(np.float32))
    twin = pickle.loads(pickle.dumps(env)) if how == "pickle" else copy.deepcopy(env)
    for _ in range(30):
        action = rng.uniform(-1, 1, 6).astype(np.float32)
        ours, theirs = env.step(action), twin.step(action)
        assert np.array_equal(ours[0], theirs[0]) and ours[1:4] == theirs[1:4]
        if ours[2]:
            break
    # The episode stream goes on the same too.
    assert np.array_equal(env.reset()[0], twin.reset()[0])


def test_v5_keywords_change_the_task_or_are_refused_by_name():
    plain, cheap = mbmpo.Env("half_cheetah", seed=1), mbmpo.Env("HalfCheetah-v5", seed=1, ctrl_cost_weight=0.0)
    plain.reset(), cheap.reset()
    action = np.full(6, 0.5, np.float32)
    assert plain.step(action)[4]["reward_ctrl"] < 0 and cheap.step(action)[4]["reward_ctrl"] == 0
    quiet = mbmpo.Env("hopper", seed=1, reset_noise_scale=0.0)
    assert np.array_equal(quiet.reset()[0], mbmpo.Env("hopper", seed=2, reset_noise_scale=0.0).reset()[0])
    assert mbmpo.Env("ant", include_cfrc_ext_in_observation=False).obs_dim == 27
    for keywords, error, name in [({"include_cfrc_ext_in_observation": True}, ValueError, "include_cfrc_ext"),
                                  ({"healthy_z_range": (0.1, 3.0)}, ValueError, "healthy_z_range"),
                                  ({"healthy_reward": 2.0}, TypeError, "healthy_reward"),
                                  ({"ctrl_cost_weight": -1.0}, ValueError, "ctrl_cost_weight"),
                                  ({"bogus": 1}, TypeError, "bogus")]:
        task = "ant" if "cfrc" in name or "z_range" in name else "half_cheetah"
        with pytest.raises(error, match=name):
            mbmpo.Env(task, **keywords)
    # (gym.make with "human" wraps an rgb_array env in Gymnasium's HumanRendering, which needs pygame.)
    with pytest.raises(ValueError, match="render"):
        gym.make("mbmpo/Hopper-v5", render_mode="depth_array")
