"""astrobio.demo: the training process's thread counts."""

from astrobio.demo import DEMO_TRAIN_THREADS, train_environment


def test_train_environment_sets_every_thread_count():
    # a caller's environment as distributed's nannies leave it (distributed.nanny.pre-spawn-environ)
    leaked = {"OMP_NUM_THREADS": "1", "MKL_NUM_THREADS": "1", "OPENBLAS_NUM_THREADS": "1", "HOME": "/h"}
    env = train_environment(leaked)
    want = str(DEMO_TRAIN_THREADS)
    assert (env["OMP_NUM_THREADS"], env["MKL_NUM_THREADS"], env["OPENBLAS_NUM_THREADS"]) == (want, want, want)
    assert env["HOME"] == "/h" and leaked["MKL_NUM_THREADS"] == "1"  # the rest kept, the caller's dict untouched
    assert DEMO_TRAIN_THREADS == 2
