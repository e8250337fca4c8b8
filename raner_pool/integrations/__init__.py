"""Where annotators and NLP code already work: Label Studio's ML backend protocol. Serving imports a module here
only for the routes that use it."""
