"""Operations: logging, systemd integration, the serve loop."""
