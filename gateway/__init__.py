"""The front door: the cloud-agent CLI, the task API and the Alertmanager webhook."""
