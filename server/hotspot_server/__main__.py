from hotspot_server.cli import main

main()
