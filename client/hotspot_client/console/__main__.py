from hotspot_client.console.cli import main

main()
