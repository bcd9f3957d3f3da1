"""The `hotspot` console command: `hotspot top` and `hotspot stats` over the generated stub."""
