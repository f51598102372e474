"""Provider metadata for Airflow's providers manager. Imports nothing heavy: Airflow calls it at start."""

from __future__ import annotations

from typing import Any


def get_provider_info() -> dict[str, Any]:
    return {
        "package-name": "airflow-provider-mlpipe",
        "name": "MLPipe",
        "description": "SageMaker-style ML pipelines (typed parameters, steps, conditions, artifacts, "
        "model registry) as Airflow DAGs.",
        "versions": ["0.1.0"],
        "config": {
            "mlpipe": {
                "description": "Settings of airflow-provider-mlpipe.",
                "options": {
                    "artifact_store": {
                        "description": "Root of the artifact store: a folder, file:// URL or s3://bucket/prefix. "
                        "Empty: $AIRFLOW_HOME/mlpipe/artifacts.",
                        "version_added": "0.1.0",
                        "type": "string",
                        "example": "s3://my-bucket/mlpipe",
                        "default": "",
                    },
                    "aws_conn_id": {
                        "description": "The Airflow connection (credentials, endpoint_url, region_name) for an "
                        "S3 artifact store and s3:// inputs. Empty: aws_default if it exists, else boto3's "
                        "default credential chain.",
                        "version_added": "0.1.0",
                        "type": "string",
                        "example": "aws_default",
                        "default": "",
                    },
                    "api_url": {
                        "description": "Base URL of the Airflow api-server that the mlpipe Python client and "
                        "`mlpipe start` talk to. Empty: http://<[api] host>:<[api] port>.",
                        "version_added": "0.1.0",
                        "type": "string",
                        "example": "http://127.0.0.1:8080",
                        "default": "",
                    },
                    "input_roots": {
                        "description": "Comma-separated folders and s3://bucket/prefix locations under which a "
                        "step input given through a parameter or expression must lie (symlinks and .. resolved). "
                        "Empty: the pipeline's own folder and the dags folder. Literal paths in a spec are "
                        "not checked.",
                        "version_added": "0.1.0",
                        "type": "string",
                        "example": "/data/shared, s3://my-bucket/datasets",
                        "default": "",
                    },
                    "script_pass_env": {
                        "description": "Comma-separated variables of the worker's environment (NAME or PREFIX*) "
                        "that every processing and training script sees, beside the safe base and a step's "
                        "own pass_env.",
                        "version_added": "0.1.0",
                        "type": "string",
                        "example": "HF_HOME, AWS_REGION",
                        "default": "",
                    },
                },
            }
        },
    }
