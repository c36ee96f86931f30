from dbclients.check import main

main()
