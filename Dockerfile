# The erpsync image: Airflow with the project's pinned dependencies, the erpsync provider and the
# emulators; every service of docker-compose.yaml runs it. The tag must equal the apache-airflow pin in
# requirements.txt (tests/deploy/test_compose_file.py checks both).
FROM apache/airflow:3.3.2-python3.11

# The same pins `make install` uses: requirements.txt resolved against the lock file constraints.txt
# (Python 3.11), from PyPI only, so workers run the versions the tests ran with. requirements.txt pins
# apache-airflow itself, so pip never changes the image's Airflow.
COPY --chown=airflow:0 requirements.txt constraints.txt /opt/airflow/
RUN pip install --no-cache-dir -r /opt/airflow/requirements.txt -c /opt/airflow/constraints.txt

# The project is laid out under /opt/airflow (AIRFLOW_HOME, the working directory) as in a checkout, so
# `python scripts/deploy_init.py` and `python -m emulators.wdt` are the same commands here and there.
# dags/, plugins/ and include/ are copied so the image runs on its own; compose mounts the checkout's
# over them.
COPY --chown=airflow:0 pyproject.toml /opt/airflow/
COPY --chown=airflow:0 plugins/ /opt/airflow/plugins/
COPY --chown=airflow:0 dags/ /opt/airflow/dags/
COPY --chown=airflow:0 include/ /opt/airflow/include/
COPY --chown=airflow:0 emulators/ /opt/airflow/emulators/
COPY --chown=airflow:0 scripts/deploy_init.py /opt/airflow/scripts/

# Editable, as `make install` does: the installed package only points at /opt/airflow/plugins, so the
# provider entry point (the wdt and kingdee connection types) and the plugin Airflow loads are always
# the same code, also when compose mounts a newer plugins/ over it. A normal install would freeze a
# second copy in site-packages, and erpsync finds include/ next to plugins/ (erpsync/scheme.py).
# setuptools is the build backend, pinned as in requirements-dev.txt.
RUN pip install --no-cache-dir setuptools==80.9.0 \
    && pip install --no-cache-dir --no-deps --no-build-isolation -e /opt/airflow

# Mount points of compose's named volumes: a new volume takes the owner and mode of the directory it
# is mounted on, so any AIRFLOW_UID in group 0 can write it (the image's convention). auth/ holds the
# UI passwords: no access for others.
RUN mkdir -p /opt/airflow/staging /opt/airflow/auth /opt/airflow/emulator-data \
    && chmod 0775 /opt/airflow/staging /opt/airflow/emulator-data \
    && chmod 0770 /opt/airflow/auth
