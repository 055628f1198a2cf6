"""HTTP pieces shared by the registry REST service and the prediction server: the one error
envelope and its handlers (:mod:`hokusai.http.errors`), JSON bodies
(:mod:`hokusai.http.bodies`), body limits (:mod:`hokusai.http.limits`) and Prometheus metrics
across worker processes (:mod:`hokusai.http.metrics`)."""
