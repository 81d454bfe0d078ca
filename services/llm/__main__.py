from services.llm.main import main

main()
