"""The artifact store (local folder, S3), typed serializers and the model registry.

Nothing is imported here, so that importing the provider stays cheap: use the modules
``reference``, ``store``, ``serializers`` and ``registry`` directly.
"""
