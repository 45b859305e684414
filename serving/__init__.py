"""TF Serving side: request builders, REST and gRPC clients, config templates."""
