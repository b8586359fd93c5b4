"""Operations: health, the admin API, metrics, logging and the OpenAPI document."""
