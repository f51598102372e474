"""airflow-provider-mlpipe: SageMaker-style ML pipelines on Apache Airflow."""
