from services.index.main import main

main()
