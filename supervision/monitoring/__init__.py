"""Monitoring: Prometheus metrics and /health over what the actors already publish.
"""

from supervision.monitoring.health import HealthReport, check_health
from supervision.monitoring.metrics import MonitoringServer, SystemMetrics

__all__ = [
    "HealthReport",
    "MonitoringServer",
    "SystemMetrics",
    "check_health",
]
