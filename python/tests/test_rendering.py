"""render_mode="rgb_array": frames drawn offscreen by MuJoCo through EGL, without a display (Mesa's
llvmpipe on a CPU machine), a video of a real episode by Gymnasium's RecordVideo, and rendering
that cannot work refused saying why."""
import subprocess
import sys

import numpy as np
import pytest

import mbmpo

gym = pytest.importorskip("gymnasium")


@pytest.fixture(scope="module")
def can_render():
    """Skips, with the reason, where this machine cannot render (no libEGL or no OpenGL driver)."""
    try:
        mbmpo.Env("inverted_pendulum", render_mode="rgb_array", width=8, height=8).render()
    except RuntimeError as error:
        pytest.skip(f"rendering is not available on this machine: {error}")


def test_frames_show_the_state_and_leave_the_simulation_alone(can_render):
    env = mbmpo.Env("half_cheetah", seed=0, render_mode="rgb_array")
    plain = mbmpo.Env("half_cheetah", seed=0)
    env.reset()
    plain.reset()
    first = env.render()
    assert first.shape == (480, 480, 3) and first.dtype == np.uint8
    assert first.std() > 5, "a blank frame"
    np.testing.assert_array_equal(env.render(), first)  # the same state, the same picture
    action = np.full(6, 0.7, np.float32)
    for _ in range(30):
        rendered = env.step(action)
        env.render()
        assert rendered[0].tolist() == plain.step(action)[0].tolist()  # rendering changes nothing
    assert not np.array_equal(env.render(), first)  # the cheetah moved


@pytest.mark.parametrize("task", mbmpo.tasks())
def test_every_task_renders_at_the_size_asked(can_render, task):
    env = mbmpo.Env(task, render_mode="rgb_array", width=64, height=48)
    env.reset()
    frame = env.render()
    assert frame.shape == (48, 64, 3) and frame.std() > 1


def test_record_video_writes_a_real_episode_headless(can_render, tmp_path):
    pytest.importorskip("moviepy")
    env = gym.make("mbmpo/Hopper-v5", render_mode="rgb_array", width=160, height=120)
    env = gym.wrappers.RecordVideo(env, str(tmp_path), episode_trigger=lambda episode: True, disable_logger=True)
    env.reset(seed=0)
    steps = 0
    while True:
        _, _, terminated, truncated, _ = env.step(env.action_space.sample())
        steps += 1
        if terminated or truncated:
            break
    env.close()
    videos = list(tmp_path.glob("*.mp4"))
    assert len(videos) == 1 and videos[0].stat().st_size > 1000, videos
    imageio = pytest.importorskip("imageio.v3")
    frames = imageio.imread(videos[0])
    assert frames.shape[1:] == (120, 160, 3) and abs(len(frames) - (steps + 1)) <= 1


def test_the_gymnasium_checker_passes_with_rendering(can_render):
    from gymnasium.utils.env_checker import check_env
    from mbmpo.gym import MbmpoEnv

    check_env(MbmpoEnv("swimmer", render_mode="rgb_array", width=32, height=32))


def test_render_modes_that_cannot_work_are_refused_saying_why():
    with pytest.raises(ValueError, match="offscreen only.*rgb_array"):
        mbmpo.Env("hopper", render_mode="human")
    with pytest.raises(ValueError, match="'rgb_array' frames only"):
        gym.make("mbmpo/Hopper-v5", render_mode="depth_array")
    with pytest.raises(ValueError, match="width"):
        mbmpo.Env("hopper", render_mode="rgb_array", width=0)
    with pytest.raises(TypeError, match="height"):
        mbmpo.Env("hopper", render_mode="rgb_array", height=2.5)
    assert mbmpo.Env("hopper").render() is None  # no render mode: nothing, as Gymnasium's envs


def test_without_egl_rendering_says_why(tmp_path):
    """A libEGL.so.1 that is not a library stands for a machine without EGL."""
    (tmp_path / "libEGL.so.1").write_bytes(b"not a library")
    code = ("import mbmpo\ne = mbmpo.Env('hopper', render_mode='rgb_array')\ne.reset()\n"
            "try:\n    e.render()\nexcept RuntimeError as error:\n    print('refused:', error)\n")
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120,
                            env={**__import__("os").environ, "LD_LIBRARY_PATH": str(tmp_path)})
    assert result.returncode == 0, result.stderr
    assert "refused: render_mode='rgb_array' cannot render here: rendering is not available: libEGL.so.1 cannot " \
           "be opened" in result.stdout, result.stdout
