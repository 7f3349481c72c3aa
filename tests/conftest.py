"Shared pytest set-up: the `slow` marker (the quick tier is `pytest -m 'not slow'`)."

def pytest_configure(config):
    config.addinivalue_line('markers', 'slow: takes more than a few seconds (full demo, papermill, doc build, subprocess kills); '
                                      "skipped by the quick tier `pytest -m 'not slow'`")
